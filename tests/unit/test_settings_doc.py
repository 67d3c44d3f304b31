"""docs/settings.md is generated from the settings class and .env.example; a stale copy fails here."""

from __future__ import annotations

from conftest import HOME, run_ftk
from ftk.settings import Settings


def test_docs_settings_md_is_current():
    r = run_ftk("env", "docs")
    assert r.returncode == 0, r.stderr
    current = (HOME / "docs" / "settings.md").read_text()
    assert r.stdout == current, "docs/settings.md is stale: run  ftk env docs > docs/settings.md"


def test_every_setting_is_in_the_reference_with_its_default():
    doc = (HOME / "docs" / "settings.md").read_text()
    for name, field in Settings.model_fields.items():
        row = next((line for line in doc.splitlines() if line.startswith(f"| `{name.upper()}` |")), None)
        assert row, f"{name.upper()} is missing from docs/settings.md"
        if isinstance(field.default, str) and field.default and "|" not in field.default:
            assert f"`{field.default}`" in row, f"{name.upper()}: default {field.default!r} not shown: {row}"
