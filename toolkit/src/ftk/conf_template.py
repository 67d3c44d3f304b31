"""Configuration templates of the tools a stage runs (nginx, Prometheus): `${NAME}` placeholders filled from an
explicit set of values; everything else, nginx's own `$variables` included, is left as it is. A placeholder
outside the set is an error naming the file, so a typo never reaches the tool as literal text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ftk.console import UserError

PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SUFFIX = ".template"


def fill(text: str, values: Mapping[str, str], source: str) -> str:
    """`text` with every `${NAME}` replaced by values[NAME]."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise UserError(
                f"{source}: unknown placeholder ${{{name}}}; a template may use only {', '.join(sorted(values))}"
            )
        return values[name]

    return PLACEHOLDER_RE.sub(one, text)


def render_tree(root: Path, values: Mapping[str, str]) -> dict[Path, str]:
    """Every `*.template` under `root`, filled: {path relative to root without the suffix: text}."""
    if not root.is_dir():
        raise UserError(f"template folder {root} does not exist; FTK_HOME must be the project checkout")
    out = {}
    for path in sorted(root.rglob(f"*{SUFFIX}")):
        rel = path.relative_to(root)
        out[rel.with_name(rel.name.removesuffix(SUFFIX))] = fill(path.read_text(encoding="utf-8"), values, str(path))
    return out
