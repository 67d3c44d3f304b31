"""Secret files: one random value a file, mode 0600, made once and never printed."""

from __future__ import annotations

import secrets
from pathlib import Path

from ftk.files import write_atomic


def ensure_secret(path: Path) -> bool:
    """Make `path` with a random secret unless it holds one already (left as it is: it may be a read-only
    mount, as compose secrets are); True when it was made."""
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        return False
    write_atomic(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return True
