"""Shared fixtures: the project home, the project's venvs and a way to run the real `ftk` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HOME = Path(__file__).resolve().parents[1]
VENVS = Path(os.environ.get("FTK_VENVS", HOME / ".venvs"))


def venv_bin(venv: str, tool: str) -> Path:
    """A tool of a project venv; fails (never skips) when set-up did not build it."""
    path = VENVS / venv / "bin" / tool
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup` (scripts/setup.sh {venv})")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process, without the developer's own .env leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTK_", "PYTEST_"))}
    env.update({"FTK_HOME": str(HOME), "FTK_ENV_FILE": "/nonexistent/.env", "NO_COLOR": "1", "COLUMNS": "200"})
    env.update(extra)
    return env


def run_ftk(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `ftk` console script as a user would."""
    ftk = VENVS / "toolkit" / "bin" / "ftk"
    cmd = [str(ftk), *args] if ftk.exists() else [sys.executable, "-m", "ftk", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env or clean_env(), cwd=cwd or HOME, timeout=timeout, input=input
    )


# Stage and image-build times of the compose tests, printed at the end of the run (CI shows them).
TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if TIMINGS:
        terminalreporter.section("compose stack: seconds per step")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name:<48} {seconds:8.1f}")


@pytest.fixture
def home() -> Path:
    return HOME


@pytest.fixture
def ftk():
    return run_ftk


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long reliability runs; only under `make reliability` (FTK_SOAK=1)")
    config.addinivalue_line("markers", "compose: the compose stack on a real Docker engine (make compose-test)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("FTK_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak test: runs under `make reliability` (FTK_SOAK=1)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
