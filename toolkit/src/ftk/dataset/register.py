"""`ftk dataset register` and `list`: validate, prepare, then record data sets in dataset_info.json."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk import paths
from ftk.console import EXIT_USAGE, UserError
from ftk.dataset.formats import layout_from_entry
from ftk.dataset.problems import ProblemSink
from ftk.dataset.registry import Outcome, Registry
from ftk.dataset.report import by_kind
from ftk.dataset.shapes import make_shapes
from ftk.dataset.templates import fill_template, has_placeholders
from ftk.dataset.validate import FileReport, Options, validate_file

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
HUB_KEYS = ("hf_hub_url", "ms_hub_url", "script_url", "om_hub_url", "cloud_file_name")


@dataclass
class Registration:
    name: str
    source: Path
    registered: Path | None = None  # the file the entry points at (a filled copy for templates)
    entry: dict[str, Any] | None = None
    outcome: Outcome | None = None
    reports: list[FileReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return all(r.valid for r in self.reports)


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise UserError(
            f"--name {name!r}: use letters, digits, '_', '-' or '.' (names go into the comma-separated "
            "DATASETS setting)",
            EXIT_USAGE,
        )


def file_name_for(path: Path, dataset_dir: Path) -> str:
    """The entry's file_name: relative to the dataset dir when inside it (LLaMA-Factory joins the two)."""
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(dataset_dir))
    return str(real.relative_to(root)) if root in real.parents else str(real)


def _is_project_shapes(path: Path) -> bool:
    return os.path.realpath(path) == os.path.realpath(paths.project_home() / "data" / "shapes.jsonl")


def register(
    source: Path,
    name: str,
    dataset_dir: Path,
    media_root: Path,
    force: bool,
    sink: ProblemSink,
    assistant: tuple[str, str],
) -> Registration:
    """Validate `source` (and its filled copy when it is a template), then add it to dataset_info.json."""
    check_name(name)
    reg = Registration(name, source)
    opts = Options(media_root=media_root)
    if _is_project_shapes(source):
        written, total = make_shapes(media_root)
        reg.notes.append(f"shape images: {written} of {total} written under {media_root / 'generated/shapes'}")
    reg.reports.append(validate_file(source, opts, sink))
    if not reg.valid:
        return reg
    target = source
    if has_placeholders(source):
        target = dataset_dir / "generated" / f"{name}{source.suffix}"
        n = fill_template(source, target, *assistant)
        reg.notes.append(
            f"filled {{{{name}}}}={assistant[0]!r}, {{{{author}}}}={assistant[1]!r} into {target} ({n} samples)"
        )
        reg.reports.append(validate_file(target, opts, sink))
        if not reg.valid:
            return reg
    report = reg.reports[-1]
    assert report.layout is not None
    reg.registered = target
    reg.entry = {"file_name": file_name_for(target, dataset_dir), **report.layout.entry()}
    media = [c for c in ("images", "videos", "audios") if c in reg.entry["columns"]]
    if media and os.path.realpath(media_root) != os.path.realpath(dataset_dir):
        reg.notes.append(
            f"{'/'.join(media)} paths are relative to {media_root}, but LLaMA-Factory resolves them "
            f"against media_dir (default: dataset_dir {dataset_dir}); set media_dir: {media_root} in "
            "the training recipe"
        )
    reg.outcome = Registry(dataset_dir).add(name, reg.entry, force)
    return reg


@dataclass
class EntryStatus:
    name: str
    file: str
    format: str
    samples: int | None
    valid: bool
    status: str


def list_entries(dataset_dir: Path, media_root: Path) -> list[EntryStatus]:
    """Every registered entry, re-validated against its own columns and tags."""
    rows = []
    for name, entry in Registry(dataset_dir).read().items():
        if not isinstance(entry, dict):
            rows.append(EntryStatus(name, "?", "?", None, False, "entry is not an object"))
            continue
        fmt = str(entry.get("formatting", "alpaca"))
        hub = next((k for k in HUB_KEYS if k in entry), None)
        if hub:
            rows.append(EntryStatus(name, f"{hub}: {entry[hub]}", fmt, None, True, "remote (not checked)"))
            continue
        file_name = str(entry.get("file_name", ""))
        path = dataset_dir / file_name
        if file_name and path.is_dir():
            rows.append(EntryStatus(name, file_name, fmt, None, True, "folder (files not checked)"))
            continue
        if not file_name or not path.is_file():
            rows.append(EntryStatus(name, file_name or "?", fmt, None, False, "file missing"))
            continue
        report = validate_file(path, Options(media_root=media_root), ProblemSink(0), layout=layout_from_entry(entry))
        status = "valid" if report.valid else f"{report.total} problem(s): {by_kind(report.problems)}"
        rows.append(EntryStatus(name, file_name, fmt, report.samples, report.valid, status))
    return rows
