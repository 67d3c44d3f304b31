"""Running the stage's tool: where a venv's tool is, and a child whose output goes to the terminal and a log."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from ftk import paths
from ftk.console import UserError, info

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def venv_tool(venv: str, tool: str) -> str:
    """A tool of one of the project's venvs, or the tool on PATH (in the images, installed system-wide)."""
    path = paths.venv_bin(venv, tool)
    if os.access(path, os.X_OK):
        return str(path)
    found = shutil.which(tool)
    if found:
        return found
    raise UserError(f"{tool} not found in {path.parent} nor on PATH; run: make setup (scripts/setup.sh {venv})")


def run_logged(cmd: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Run CMD, its output streamed to stdout (as `tee` did) and appended to LOG; signals (docker stop, Ctrl-C)
    go to the child, which exits on its own terms (LLaMA-Factory saves nothing half-written)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    info(f"running: {' '.join(cmd)} (log {log})")
    with log.open("ab") as sink:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)

        def forward(signum: int, _frame: FrameType | None) -> None:
            child.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
        try:
            assert child.stdout is not None
            for chunk in iter(lambda: child.stdout.read1(65536), b""):  # type: ignore[union-attr]
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                sink.write(chunk)
            return child.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_quiet(cmd: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run a helper in another venv; its output goes straight to the terminal."""
    return subprocess.run(cmd, env=env, check=False).returncode
