"""One JSON line per reliability case: what was tried and how it ended. Safe for parallel writers (one
O_APPEND write per row, under an advisory lock)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from ftk import paths

AREAS = ("input", "fault", "load", "security")
GOOD = {"clear_error", "works", "recovered", "completed", "refused", "passed"}
BAD = {"traceback", "unclear", "damaged", "not_recovered", "lost", "failed"}


def default_path() -> Path:
    env = os.environ.get("FTK_RELIABILITY_LEDGER")
    return Path(env) if env else paths.project_home() / "runs" / "reliability" / "ledger.jsonl"


def record(area: str, case: str, outcome: str, path: Path | None = None, **figures: Any) -> None:
    if area not in AREAS or outcome not in GOOD | BAD:
        raise ValueError(f"ledger row {case!r}: area {area!r} / outcome {outcome!r} unknown")
    path = path or default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    row = json.dumps({"area": area, "case": case, "outcome": outcome, **figures}, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, row.encode("utf-8"))
    finally:
        os.close(fd)


def read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
