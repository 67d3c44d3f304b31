"""Usage per API key and model from the gateway's JSON access log (`ftk gateway usage`): requests, errors and
vLLM's token counts, for a table or a CSV to bill from. Rotated logs (access.log.1, access.log.2.gz, ...) are read
too, so a report covers what the log keeps."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

INFERENCE = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
COLUMNS = ("key_name", "key_id", "model", "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens")


@dataclass
class Row:
    key_id: str
    model: str
    key_name: str = "-"
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def values(self) -> list[str]:
        return [str(getattr(self, c)) for c in COLUMNS]


def log_files(log: Path) -> list[Path]:
    """The log and its numbered rotations (logrotate's access.log.1, access.log.2.gz, ...), oldest first."""
    numbered = {}
    for path in log.parent.glob(log.name + ".*"):
        number = path.name.removeprefix(log.name + ".").split(".")[0]
        if number.isdigit():
            numbered[int(number)] = path
    return [numbered[n] for n in sorted(numbered, reverse=True)] + ([log] if log.exists() else [])


def records(files: list[Path]) -> Iterator[dict]:
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict):
                    yield rec


def report(files: list[Path], names: dict[str, str], since: str = "", until: str = "") -> list[Row]:
    """Rows per (key id, model) of the inference requests with since <= time < until (ISO prefixes)."""
    rows: dict[tuple[str, str], Row] = {}
    for rec in records(files):
        key_id, time = str(rec.get("key_id") or ""), str(rec.get("time") or "")
        if not key_id or rec.get("path") not in INFERENCE:
            continue
        if (since and time < since) or (until and time >= until):
            continue
        model = str(rec.get("model") or "-")
        row = rows.setdefault((key_id, model), Row(key_id, model, names.get(key_id, "-")))
        row.requests += 1
        row.errors += int(int(rec.get("status") or 0) >= 400)
        for kind in ("prompt_tokens", "completion_tokens"):
            n = rec.get(kind)
            if isinstance(n, int):
                setattr(row, kind, getattr(row, kind) + n)
    return sorted(rows.values(), key=lambda r: (r.key_name, r.key_id, r.model))


def to_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(r.values() for r in rows)
    return out.getvalue()
