"""Host checks: Python, the project's venvs, Debian tools, the `.env` file.

GPUs, disk and ports are checked by the stage that needs them (checks_train, checks_serve, checks_gateway...)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from ftk import paths
from ftk.doctor.registry import Result, check, failed, passed, warned
from ftk.env_file import check_file
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
