"""The package's import layers hold (`lint-imports`, contracts in toolkit/pyproject.toml [tool.importlinter]):
the CLI on top, the stages in the middle, shared code at the bottom, and no import cycle in any package. It
reads every import, those inside functions too, and names the one that breaks a contract."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import HOME, clean_env, venv_bin

SRC = HOME / "toolkit" / "src"
CONFIG = HOME / "toolkit" / "pyproject.toml"


def lint_imports(src: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the `ftk` package found under `src` (PYTHONPATH first, before the installed one)."""
    return subprocess.run(
        [str(venv_bin("toolkit", "lint-imports")), "--config", str(CONFIG), "--no-cache"],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(src)),
        cwd=src,
        timeout=120,
        check=False,
    )


def test_the_layers_and_the_no_cycle_rule_hold() -> None:
    r = lint_imports(SRC)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout


def test_an_upward_import_hidden_in_a_function_breaks_the_layers(tmp_path: Path) -> None:
    shutil.copytree(SRC / "ftk", tmp_path / "ftk", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "ftk" / "files.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _upward():\n    from ftk.commands import env\n\n    return env\n")
    r = lint_imports(tmp_path)
    assert r.returncode == 1, r.stdout[-4000:]
    assert "ftk.files is not allowed to import ftk.commands" in r.stdout


def test_an_import_cycle_inside_a_package_is_named(tmp_path: Path) -> None:
    shutil.copytree(SRC / "ftk", tmp_path / "ftk", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "ftk" / "hf" / "tensors.py").open("a", encoding="utf-8") as f:
        f.write("\n\nfrom ftk.hf import folder  # noqa: E402\n")  # folder imports tensors already
    r = lint_imports(tmp_path)
    assert r.returncode == 1, r.stdout[-4000:]
    assert "No cycles are allowed in ftk.hf" in r.stdout
