"""Secret files: mode 0600 from the first byte, written at once, never printed."""

from __future__ import annotations

import secrets
from pathlib import Path

from ftk.files import write_atomic


def write_secret(path: Path, text: str) -> None:
    """Replace `path` with `text`, mode 0600 (the temporary file is 0600 too, so no reader sees it half-made)."""
    write_atomic(path, text, mode=0o600)


def ensure_secret(path: Path) -> bool:
    """Make `path` with a random secret unless it holds one already (left as it is: it may be a read-only
    mount, as compose secrets are); True when it was made."""
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return False
    write_secret(path, secrets.token_urlsafe(32) + "\n")
    return True
