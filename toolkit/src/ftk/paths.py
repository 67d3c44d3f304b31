"""Where the project lives on disk, so relative paths in `.env` mean the same from any working directory."""

from __future__ import annotations

import os
from pathlib import Path


def project_home() -> Path:
    """The repository root: `FTK_HOME` when set (containers), else the checkout this package was installed from."""
    env = os.environ.get("FTK_HOME")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "compose.yaml").is_file() and (parent / "toolkit").is_dir():
            return parent
    return Path.cwd().resolve()


def env_file() -> Path:
    """The `.env` to read: `FTK_ENV_FILE` when set, else `<home>/.env`."""
    env = os.environ.get("FTK_ENV_FILE")
    return Path(env).resolve() if env else project_home() / ".env"


def resolve(path: str | Path) -> Path:
    """A path from settings, relative ones taken from the project home."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (project_home() / p)


def venv_bin(venv: str, tool: str) -> Path:
    """A tool inside one of the project's virtual environments (`.venvs/<venv>/bin/<tool>`)."""
    root = Path(os.environ.get("FTK_VENVS", project_home() / ".venvs"))
    return root / venv / "bin" / tool
