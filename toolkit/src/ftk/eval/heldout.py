"""The held-out set: alpaca rows (`instruction`, `input`, `output`) or preference pairs (`chosen` is the reference).

An optional `expect` column holds the phrase the `contains` metric looks for (default: the reference itself).
`{{name}}`/`{{author}}` are filled from ASSISTANT_NAME/ASSISTANT_AUTHOR, as registration fills the data sets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ftk.console import EXIT_USAGE, UserError


@dataclass(frozen=True)
class Item:
    prompt: str
    reference: str
    expect: str
    system: str = ""


def load(path: Path, name: str, author: str, limit: int = 0) -> list[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(
            f"--heldout {path}: cannot read it ({err}); give a JSON or JSONL held-out file", EXIT_USAGE
        ) from None
    text = text.replace("{{name}}", name).replace("{{author}}", author)
    try:
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}:{err.colno}: invalid JSON ({err.msg}); fix the held-out file") from None
    items = []
    for i, row in enumerate(rows, 1):
        reference = row.get("output", row.get("chosen")) if isinstance(row, dict) else None
        if not isinstance(reference, str) or not isinstance(row.get("instruction"), str):
            raise UserError(
                f"{path}: sample {i}: needs 'instruction' and 'output' (or 'chosen') strings; fix the held-out file"
            )
        prompt = "\n".join(t for t in (row["instruction"], row.get("input") or "") if t)
        items.append(Item(prompt, reference, str(row.get("expect") or reference), str(row.get("system") or "")))
    if not items:
        raise UserError(f"{path}: no samples; the held-out set needs at least one")
    return items[:limit] if limit else items
