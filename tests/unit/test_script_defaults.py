"""Defaults live in settings.py alone: no script in scripts/ writes `${KEY:-default}` for a settings key (they
read effective values from `ftk env export`, or exec `ftk run <stage>`, which reads the settings itself)."""

from __future__ import annotations

import re

from conftest import HOME
from ftk.settings import Settings

DEFAULT_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):-")


def defaults_in(path) -> set[str]:
    keys = {name.upper() for name in Settings.model_fields}
    return {m.group(1) for m in DEFAULT_RE.finditer(path.read_text())} & keys


def test_scripts_take_no_settings_default_of_their_own():
    for path in sorted((HOME / "scripts").rglob("*.sh")):
        found = defaults_in(path)
        assert not found, f"{path.relative_to(HOME)} sets its own defaults for {sorted(found)}; read `ftk env export`"
