"""docs/settings.md, generated from the settings class (`ftk env docs`): every key with its built-in default,
grouped as `.env.example` groups them, with the description `.env.example` gives it. A test fails when the file
in the repository is stale, so the reference never drifts from the code."""

from __future__ import annotations

import re
from pathlib import Path

from ftk.settings import Settings

HEADER_RE = re.compile(r"^# ===== (.+?) =+$")
KEY_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")

INTRO = """# Settings

Generated from `toolkit/src/ftk/settings.py` and the descriptions in `.env.example` by `ftk env docs`; do not edit
by hand (`ftk env docs > docs/settings.md` after changing a setting; a test fails when this file is stale).

One `.env` per host (`cp .env.example .env`), overridable by environment variables: environment > `.env` >
the built-in defaults below (made for a CPU host). `FTK_ENV_FILE` points at another file. `ftk env check [FILE]`
reports unknown keys (with the closest known key) and bad values, naming the key and line; `ftk env show` prints
the effective settings; `ftk env export` prints them as shell assignments (the stage scripts read it).
The `.env.example` value is the one for a host with one 24 GB GPU.
"""


def _default(name: str) -> str:
    value = Settings.model_fields[name].default
    if isinstance(value, bool):
        return str(value).lower()
    text = "" if value is None else str(value)
    return f"`{text}`" if text not in ("", ".") else "(empty)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


def example_blocks(example: Path) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """[(section, [(KEY, example value, description)])] in .env.example's order."""
    sections: list[tuple[str, list[tuple[str, str, str]]]] = []
    comments: list[str] = []
    for line in example.read_text(encoding="utf-8").splitlines():
        header = HEADER_RE.match(line)
        if header:
            sections.append((header.group(1), []))
            comments = []
            continue
        key = KEY_RE.match(line)
        if key and sections:
            doc = " ".join(c for c in comments if not c.startswith("default:"))
            sections[-1][1].append((key.group(1), key.group(2).strip('"'), doc))
            comments = []
        elif line.startswith("#") and sections:
            comments.append(line.lstrip("# ").rstrip())
        else:
            comments = []
    return sections


def render(example: Path) -> str:
    out = [INTRO]
    for section, keys in example_blocks(example):
        out += ["", f"## {section}", "", "| key | default | .env.example | what it does |", "|---|---|---|---|"]
        for key, value, doc in keys:
            name = key.lower()
            default = _default(name) if name in Settings.model_fields else "(not a setting)"
            shown = f"`{_cell(value)}`" if value else "(empty)"
            out.append(f"| `{key}` | {_cell(default)} | {shown} | {_cell(doc)} |")
    return "\n".join(out) + "\n"
