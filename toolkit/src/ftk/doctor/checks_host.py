"""Host checks: Python, the project's venvs, Debian tools, GPUs, disk, ports and the `.env` file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from ftk import paths
from ftk.doctor.registry import Result, check, failed, passed, warned
from ftk.env_file import check_file
from ftk.ports import port_in_use
from ftk.settings import Settings

MIN_PYTHON = (3, 10)
# venv -> a tool that proves it works; in containers the tool is on PATH instead (like scripts' venv_tool).
VENVS = {"toolkit": "ftk", "train": "llamafactory-cli", "serve": "vllm"}
DEBIAN_TOOLS = {
    "nginx": "nginx",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "openssl": "openssl",
    "curl": "curl",
    "jq": "jq",
}
SETUP_HINT = "run `make setup`"


@check("python", order=10)
def python_version(_s: Settings) -> Result:
    v = sys.version_info
    text = f"Python {v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v[:2] < MIN_PYTHON:
        return failed(text, f"install Python >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} and run `make setup` again")
    return passed(text)


def venvs_root() -> Path:
    return Path(os.environ.get("FTK_VENVS", paths.project_home() / ".venvs"))


@check("venv", order=20)
def venvs(_s: Settings) -> Iterator[Result]:
    """Each venv `make setup` builds is there and stamped; a stamp older than its requirements is stale."""
    root = venvs_root()
    names = list(VENVS) + sorted(p.name for p in root.glob("*") if (p / ".ftk-stamp").is_file() and p.name not in VENVS)
    for name in names:
        folder = root / name
        stamp = folder / ".ftk-stamp"
        req = paths.project_home() / "toolkit" / "requirements" / f"{name}.txt"
        tool = VENVS.get(name)
        if not (folder / "bin" / "python").exists():
            on_path = shutil.which(tool) if tool else None
            if on_path and not Path(on_path).is_relative_to(root):  # containers: tools installed system-wide
                yield passed(f"no {folder}; {tool} is on PATH ({on_path})", name)
            else:
                yield failed(f"{folder} is missing", f"{SETUP_HINT} (scripts/setup.sh {name})", name)
        elif not stamp.is_file():
            yield failed(
                f"{folder} has no .ftk-stamp (set-up did not finish)",
                f"{SETUP_HINT} (scripts/setup.sh {name})",
                name,
            )
        elif req.is_file() and req.stat().st_mtime > stamp.stat().st_mtime:
            yield warned(
                f"{req.relative_to(paths.project_home())} changed after {folder.name} was built",
                f"{SETUP_HINT} to rebuild it",
                name,
            )
        else:
            yield passed(f"{folder} (stamped)", name)


def which(tool: str) -> str | None:
    """Like `command -v`, also in the sbin folders a non-root PATH may miss (nginx lives there)."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/local/sbin:/usr/sbin:/sbin")


@check("debian tool", order=30)
def debian_tools(_s: Settings) -> Iterator[Result]:
    for tool, package in DEBIAN_TOOLS.items():
        found = which(tool)
        if found:
            yield passed(found, tool)
        else:
            yield failed(
                f"{tool} not found",
                f"{SETUP_HINT} (scripts/setup.sh debian) or apt-get install {package}",
                tool,
            )


def visible_gpus() -> tuple[int, str]:
    """GPUs this process may use: `nvidia-smi -L`, narrowed by CUDA_VISIBLE_DEVICES (as in checks.sh)."""
    total, how = 0, "no nvidia-smi"
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
            total = sum(1 for line in out.splitlines() if line.startswith("GPU "))
            how = f"nvidia-smi -L lists {total}"
        except (OSError, subprocess.SubprocessError) as err:
            how = f"nvidia-smi failed: {err}"
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        ids = [x for x in cvd.replace(" ", "").split(",") if x]
        if not ids or ids in (["-1"], ["none"]):
            return 0, f"{how}, CUDA_VISIBLE_DEVICES={cvd!r} hides all"
        if len(ids) < total:
            return len(ids), f"{how}, CUDA_VISIBLE_DEVICES={cvd!r} keeps {len(ids)}"
    return total, how


@check("gpus", order=40)
def gpus(s: Settings) -> Iterator[Result]:
    have, how = visible_gpus()
    for key, need in (("TRAIN_GPUS", s.train_gpus), ("TENSOR_PARALLEL_SIZE", s.tensor_parallel_size)):
        item = f"{key}={need}"
        if key == "TRAIN_GPUS" and need == 0:
            yield passed(f"training runs on CPU ({how})", item)
        elif have >= need:
            yield passed(f"{have} visible ({how})", item)
        elif s.allow_cpu:
            yield passed(
                f"{have} visible ({how}), {need} wanted; ALLOW_CPU=true: runs on CPU (set ALLOW_CPU=false "
                "on a GPU host to make this a failure)",
                item,
            )
        else:
            yield failed(
                f"{have} visible ({how}), {need} needed",
                f"lower {key}, fix CUDA_VISIBLE_DEVICES, or set ALLOW_CPU=true on a CPU host",
                item,
            )


def free_mib(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free // 2**20


@check("disk", order=50)
def disk(s: Settings) -> Iterator[Result]:
    # (key, folder, MiB below which it fails, MiB below which it warns)
    need = max(s.download_min_free_mb, 1024)
    for key, folder, fail_below, warn_below in (
        ("MODELS_DIR", s.path("models_dir"), 1024, need),
        ("MODELSCOPE_CACHE", s.path("modelscope_cache"), 0, s.download_min_free_mb),
        ("RUNS_DIR", s.path("runs_dir"), 512, 2048),
    ):
        free = free_mib(folder)
        text = f"{free} MiB free for {folder}"
        fix = f"free space on that disk or point {key} to a larger one"
        if free < fail_below:
            yield failed(text + f" (< {fail_below} MiB)", fix, key)
        elif free < warn_below:
            yield warned(text + f" (< {warn_below} MiB recommended)", fix, key)
        else:
            yield passed(text, key)


@check("port", order=60)
def ports(s: Settings) -> Iterator[Result]:
    for key, host, port in (
        ("VLLM_PORT", s.vllm_host, s.vllm_port),
        ("GATEWAY_HTTPS_PORT", s.gateway_bind, s.gateway_https_port),
        ("GATEWAY_HTTP_PORT", s.gateway_bind, s.gateway_http_port),
        ("GATEWAY_INTERNAL_PORT", "127.0.0.1", s.gateway_internal_port),
        ("PROMETHEUS_PORT", s.prometheus_bind, s.prometheus_port),
    ):
        item = f"{key}={port}"
        if port_in_use(host, port):
            yield warned(
                f"{host}:{port} is in use (fine if the ftk stack is already running)",
                f"stop what listens there (ss -ltnp 'sport = :{port}') or set another {key} in .env",
                item,
            )
        elif port < 1024 and os.geteuid() != 0:
            yield warned(
                f"{host}:{port} is free but below 1024 and this user is not root",
                f"use a port >= 1024 for {key}, or grant CAP_NET_BIND_SERVICE",
                item,
            )
        else:
            yield passed(f"{host}:{port} free", item)


@check(".env", order=70)
def env_file(_s: Settings) -> Iterator[Result]:
    target = paths.env_file()
    if not target.is_file():
        yield warned(
            f"{target} does not exist: built-in defaults (a CPU host) are used",
            f"cp .env.example {target} && chmod 600 {target}, then edit it",
        )
        return
    problems = check_file(target)
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        yield failed(problems[0] + more, f"fix the key(s); `ftk env check {target}` lists every problem")
    else:
        yield passed(f"{target}: every key known and valid")
    mode = target.stat().st_mode & 0o777
    if mode & 0o004:
        yield failed(
            f"{target} is world-readable (mode {mode:o}) and may hold secrets",
            f"chmod 600 {target}",
            "permissions",
        )
    elif mode & 0o040:
        yield warned(f"{target} is group-readable (mode {mode:o})", f"chmod 600 {target}", "permissions")
    else:
        yield passed(f"mode {mode:o}", "permissions")
