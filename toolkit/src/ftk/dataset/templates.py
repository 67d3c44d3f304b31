"""Data-set templates: `{{name}}` and `{{author}}` in any text, filled from ASSISTANT_NAME / ASSISTANT_AUTHOR.

The filled copy keeps the template's layout (JSON array or JSON lines), is written atomically, and is the file
that gets registered; the template itself stays in git untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftk.dataset.readers import ParseIssue, iter_samples, sniff
from ftk.files import open_atomic

MARKERS = ("{{name}}", "{{author}}")


def has_placeholders(path: Path, chunk: int = 1 << 20) -> bool:
    """Whether the file mentions {{name}} or {{author}} (a streaming scan)."""
    tail = ""
    with path.open(encoding="utf-8", errors="replace") as f:
        while block := f.read(chunk):
            text = tail + block
            if any(m in text for m in MARKERS):
                return True
            tail = text[-16:]
    return False


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for marker, text in values.items():
            value = value.replace(marker, text)
        return value
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def fill_template(src: Path, dst: Path, name: str, author: str) -> int:
    """Write `src` with its placeholders filled to `dst`; the number of samples written."""
    values = {"{{name}}": name, "{{author}}": author}
    array = sniff(src)[0] == "array"
    n = 0
    with open_atomic(dst, mode=0o644, fsync=True) as out:
        out.write("[" if array else "")
        for rec in iter_samples(src):
            if isinstance(rec, ParseIssue):  # callers validate first; this is a guard, not a report
                raise ValueError(f"{src}:{rec.line}: {rec.message}")
            text = json.dumps(_fill(rec.value, values), ensure_ascii=False)
            out.write(("\n  " if n == 0 else ",\n  ") + text if array else text + "\n")
            n += 1
        out.write("\n]\n" if array else "")
    return n
