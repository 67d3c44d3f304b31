"""Defaults live in settings.py alone: no script in scripts/ writes `${KEY:-default}` for a settings key (they
read effective values from `ftk env export`). scripts/lib/checks.sh is the bash check library that moves to the
doctor registry: it is listed until that work is done."""

from __future__ import annotations

import re

from conftest import HOME
from ftk.settings import Settings

PENDING = {"checks.sh"}  # remove a file from here once its defaults come from `ftk env export`
DEFAULT_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):-")


def defaults_in(path) -> set[str]:
    keys = {name.upper() for name in Settings.model_fields}
    return {m.group(1) for m in DEFAULT_RE.finditer(path.read_text())} & keys


def test_scripts_take_no_settings_default_of_their_own():
    for path in sorted((HOME / "scripts").rglob("*.sh")):
        found = defaults_in(path)
        if path.name in PENDING:
            assert found, f"{path.name} has no settings default left: remove it from PENDING"
            continue
        assert not found, f"{path.relative_to(HOME)} sets its own defaults for {sorted(found)}; read `ftk env export`"
