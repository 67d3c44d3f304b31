"""ftk.files, the one module for atomic writes and hashing: a failed write changes nothing and leaves no temp."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from ftk.files import atomic_dir, open_atomic, sha256_file, write_atomic


def test_write_keeps_the_mode_and_the_old_version_on_request(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    write_atomic(target, "one\n", mode=0o640)
    write_atomic(target, "two\n", keep_old=True)
    assert target.read_text() == "two\n" and (tmp_path / "sub" / "a.txt.bak").read_text() == "one\n"
    assert target.stat().st_mode & 0o777 == 0o640
    write_atomic(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o600  # a new file is never readable by others


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), open_atomic(target, fsync=True) as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_folder_is_swapped_in_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.bin").write_text("new")
        assert not (target / "new.bin").exists()
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    data = b"abc" * 3_000_000  # more than one read chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
