"""`ftk-manifest.json`: what a built model folder holds (file -> sha256, size) and what it was built from.

The manifest is what makes a rebuild a no-op: the folder is current when every file it lists is there with the
same hash, no other file is, and the recorded source and recipe match the ones installed now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk.files import sha256_file

MANIFEST_NAME = "ftk-manifest.json"


def file_entries(folder: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file in `folder` except the manifest, by relative path (sorted)."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST_NAME:
            entries[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return entries


def dumps(data: Any) -> str:
    """The one JSON spelling of every file the builder writes: sorted keys, two-space indent, newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(folder: Path, source: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    data = {"format": 1, "source": source, "recipe": recipe, "files": file_entries(folder)}
    (folder / MANIFEST_NAME).write_text(dumps(data), encoding="utf-8")
    return data


def read(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


@dataclass
class Verdict:
    """Whether a folder matches its manifest; `problems` says what differs, one line each."""

    ok: bool
    problems: list[str] = field(default_factory=list)


def verify(folder: Path, source: dict[str, Any] | None = None, recipe: dict[str, Any] | None = None) -> Verdict:
    """Compare a folder with its manifest (and, when given, the expected source and recipe)."""
    if not folder.is_dir():
        return Verdict(False, [f"{folder} does not exist"])
    data = read(folder)
    if data is None:
        return Verdict(False, [f"{folder / MANIFEST_NAME} is missing or unreadable"])
    problems: list[str] = []
    if source is not None and data.get("source") != source:
        problems.append(f"built from {data.get('source')}, installed source is {source}")
    if recipe is not None and data.get("recipe") != recipe:
        problems.append(f"built with recipe {data.get('recipe')}, current recipe is {recipe}")
    listed: dict[str, dict[str, Any]] = data["files"]
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST_NAME}
    for rel in sorted(present - set(listed)):
        problems.append(f"{rel}: not in the manifest")
    for rel, entry in sorted(listed.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(f"{rel}: size {path.stat().st_size}, manifest says {entry.get('size')}")
        elif sha256_file(path) != entry.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the manifest (file changed)")
    return Verdict(not problems, problems)
