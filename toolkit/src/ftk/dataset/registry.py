"""LLaMA-Factory's registry, DATASET_DIR/dataset_info.json: read it strictly, edit it safely.

Every edit holds a file lock (so concurrent registrations serialise instead of losing entries), keeps a
timestamped copy of the old file (the last KEEP_BACKUPS), and replaces the file atomically (temp file in the
same folder, fsync, rename: ftk.files). A corrupt file is reported with its line and column and never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from ftk.console import EXIT_INVALID, UserError
from ftk.files import open_atomic

INFO_NAME = "dataset_info.json"
KEEP_BACKUPS = 10
LOCK_TIMEOUT = 120.0

Outcome = Literal["added", "replaced", "unchanged"]


class Registry:
    def __init__(self, dataset_dir: Path) -> None:
        self.dir = dataset_dir
        self.path = dataset_dir / INFO_NAME
        self.lock_path = dataset_dir / f"{INFO_NAME}.lock"

    def read(self) -> dict[str, Any]:
        """The entries ({} when there is no file yet); a UserError naming line and column when corrupt."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"{self.path}: cannot read it ({err}); fix its permissions or encoding") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            backup = self.backups()[-1:] or ["none yet"]
            raise UserError(
                f"{self.path}:{err.lineno}:{err.colno}: invalid JSON ({err.msg}); fix it by hand or "
                f"restore a backup ({backup[0]}); the file was left as it is"
            ) from None
        if not isinstance(data, dict):
            raise UserError(
                f"{self.path}:1:1: the top level is not an object of dataset entries; restore a "
                'backup or write {"name": {"file_name": ...}}'
            )
        return data

    def backups(self) -> list[Path]:
        return sorted(self.dir.glob(f"{INFO_NAME}.bak.*"))

    def add(self, name: str, entry: dict[str, Any], force: bool) -> Outcome:
        """Add or replace one entry; the others are written back exactly as they were."""
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT):
                data = self.read()
                old = data.get(name)
                if old == entry:
                    return "unchanged"
                if old is not None and not force:
                    raise UserError(
                        f"{self.path}: '{name}' is already registered with a different definition "
                        f"({_diff(old, entry)}); pass --force to replace it, or choose another --name",
                        EXIT_INVALID,
                    )
                data[name] = entry
                self._write(data)
                return "replaced" if old is not None else "added"
        except Timeout:
            raise UserError(
                f"{self.lock_path}: still locked after {LOCK_TIMEOUT:.0f} s by another registration; "
                "wait for it, or delete the lock file if no ftk process is running"
            ) from None

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        mode = 0o644
        if self.path.exists():
            mode = self.path.stat().st_mode & 0o777
            self._backup()
        with open_atomic(self.path, mode=mode, fsync=True) as f:
            f.write(text)

    def _backup(self) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.dir / f"{INFO_NAME}.bak.{stamp}"
        n = 1
        while target.exists():
            target = self.dir / f"{INFO_NAME}.bak.{stamp}-{n}"
            n += 1
        shutil.copy2(self.path, target)
        for old in self.backups()[:-KEEP_BACKUPS]:
            with contextlib.suppress(OSError):
                old.unlink()


def _diff(old: Any, new: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        return "the existing entry is not an object"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "differs in " + ", ".join(keys)
