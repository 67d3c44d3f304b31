"""Files the toolkit writes or fingerprints: writes that never leave half a file, folders swapped in whole, sha256.

A write goes to a temporary file (or folder) next to its target, then one rename puts it in place: readers see
the old version or the new one, never a mix, and an interrupted write leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks (model weights do not fit in memory twice)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to the disk; a power cut then keeps what the rename promised."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, *, mode: int | None = None, backup: str = "", fsync: bool = False) -> Iterator[Path]:
    """A temporary path next to `path` for the block to write; when the block succeeds it replaces `path` by one
    rename, else it is removed. `mode` is set before the rename (default: the old file's mode; a new file is
    0600, as secrets must be), `backup` is the suffix of a copy of the old file (none when empty), and `fsync`
    flushes the file and its folder (registries other tools read after a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            _fsync(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        elif path.exists():
            shutil.copymode(path, tmp)
        if backup and path.exists():
            shutil.copy2(path, path.with_name(path.name + backup))
        os.replace(tmp, path)
        if fsync:
            _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def open_atomic(path: Path, *, mode: int | None = None, backup: str = "", fsync: bool = False) -> Iterator[TextIO]:
    """A UTF-8 text file to stream `path`'s new content into; put in place as `atomic_path` does."""
    with atomic_path(path, mode=mode, backup=backup, fsync=fsync) as tmp, tmp.open("w", encoding="utf-8") as f:
        yield f


KEPT = ".bak"  # suffix of the previous version write_atomic(keep_old=True) keeps


def kept_old(path: Path) -> Path:
    """Where write_atomic(keep_old=True) keeps the previous version of `path`."""
    return path.with_name(path.name + KEPT)


def write_atomic(path: Path, text: str, mode: int | None = None, keep_old: bool = False) -> None:
    """Write `text` to `path` at once; `keep_old` keeps the previous version as kept_old(path) (`<name>.bak`)."""
    with open_atomic(path, mode=mode, backup=KEPT if keep_old else "") as f:
        f.write(text)


def swap_dir(new: Path, target: Path) -> None:
    """Put the folder `new` where `target` is, by renames on one file system; the old folder goes once the new
    one is in, so `target` is never half of each."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists() or target.is_symlink():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """A new empty folder next to `target` for the block to fill; it replaces `target` when the block succeeds
    and is removed when it fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        swap_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
