"""The adapter registry (LORA_REGISTRY): the LoRA adapters `ftk lora load` put on every vLLM replica.

vLLM keeps runtime-loaded adapters in memory only, on the one server that got the request. This file is the
state they are rebuilt from: `ftk lora load|unload` edit it (atomically, the previous version kept as .bak)
after the change reached every replica, the serve stage adds its adapters to `--lora-modules` when vLLM
starts, and `ftk lora sync` makes running replicas match it.
"""

from __future__ import annotations

import getpass
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftk.files import write_atomic

FORMAT = 1


@dataclass
class Entry:
    name: str
    path: str
    base: str  # adapter_config.json's base_model_name_or_path
    rank: int
    loaded_by: str
    loaded_at: str  # UTC, ISO 8601


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return "unknown"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read(path: Path) -> list[Entry]:
    """The registered adapters; [] when the file does not exist. A damaged file is an error naming it."""
    if not path.is_file():
        return []
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        return [Entry(**item) for item in data["adapters"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"LORA_REGISTRY={path} is not a readable adapter registry ({err}); restore {path}.bak "
            "or delete the file and load the adapters again (ftk lora load)"
        ) from None


def write(path: Path, entries: list[Entry]) -> None:
    data = {"format": FORMAT, "adapters": [asdict(e) for e in sorted(entries, key=lambda e: e.name)]}
    write_atomic(path, json.dumps(data, indent=2) + "\n", mode=0o644, keep_old=True)


def put(path: Path, entry: Entry) -> None:
    write(path, [e for e in read(path) if e.name != entry.name] + [entry])


def remove(path: Path, name: str) -> bool:
    entries = read(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) != len(entries):
        write(path, kept)
    return len(kept) != len(entries)
