"""The reliability cases' common shape: run the real command, judge how it failed, record it in the ledger.

A case passes when the exit code is the expected one, the output names the thing and the fix (needles), no
traceback is printed, and no file that should stay untouched changed (sha256 before and after).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conftest import HOME, clean_env
from ftk.files import sha256_file
from reliability_ledger import record

FTK = HOME / ".venvs" / "toolkit" / "bin" / "ftk"


def digest(paths: Iterable[Path]) -> dict[Path, str]:
    return {p: sha256_file(p) if p.is_file() else "absent" for p in paths}


@dataclass
class Outcome:
    code: int
    out: str

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.out[-3000:]}"


def run_case(
    area: str,
    case: str,
    argv: list[str],
    *,
    code: int | tuple[int, ...],
    needles: Iterable[str] = (),
    keep: Iterable[Path] = (),
    env: dict[str, str] | None = None,
    timeout: float = 300,
    cwd: Path = HOME,
) -> Outcome:
    """Run ARGV; record one ledger row; assert it ended as a user would want."""
    keep = list(keep)
    before = digest(keep)
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env or clean_env(), timeout=timeout, cwd=cwd, check=False
    )
    result = Outcome(proc.returncode, proc.stdout + proc.stderr)
    codes = (code,) if isinstance(code, int) else code
    missing = [n for n in needles if n.lower() not in result.out.lower()]
    changed = [str(p) for p, h in digest(keep).items() if before[p] != h]
    if "Traceback (most recent call last)" in result.out:
        outcome = "traceback"
    elif changed:
        outcome = "damaged"
    elif proc.returncode not in codes or missing:
        outcome = "unclear"
    else:
        outcome = "works" if codes == (0,) else "clear_error"
    record(area, case, outcome, exit=proc.returncode)
    assert outcome in ("works", "clear_error"), f"{case}: {outcome}; missing {missing}; changed {changed}\n{result}"
    return result


def integration_helpers() -> None:
    """Make tests/integration's helpers (stack.py, lora_tools.py) importable when only this folder runs."""
    import sys

    folder = str(HOME / "tests" / "integration")
    if folder not in sys.path:
        sys.path.insert(0, folder)


def random_adapter(out: Path, r: int = 8) -> Path:
    """A random LoRA adapter for the default model (tests/integration/lora_tools.py, in the train venv)."""
    from conftest import venv_bin

    tools = HOME / "tests" / "integration" / "lora_tools.py"
    model = HOME / "models" / "SmolLM2-135M-Instruct"
    proc = subprocess.run(
        [str(venv_bin("train", "python")), str(tools), "adapter", str(model), str(out), "--r", str(r)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out
