"""A disk that fills up while `llamafactory-cli export` writes (soak: a real merge on a real small tmpfs).

The merge passes its disk preflight, then a filler file takes the rest of the tmpfs as soon as the export
starts: the merge must fail with a clear message, the previous merged model must be byte-identical, and nothing
half-written may sit where the merged model goes. Needs root for `mount -t tmpfs` (CI and this machine have it).
"""

from __future__ import annotations

import errno
import hashlib
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HOME, clean_env
from reliability_ledger import record
from rkit import random_adapter


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(p.name.encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _fill(path: Path) -> None:
    """Write until the disk is full (the running export competes for the same space)."""
    block = b"\0" * (4 * 2**20)
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as err:
            assert err.errno == errno.ENOSPC, err


@pytest.mark.soak
def test_full_disk_during_export_keeps_the_previous_model(tmp_path: Path) -> None:
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200m", "tmpfs", str(mnt)], check=False)
    assert mounted.returncode == 0, "mount -t tmpfs failed: this test needs root"
    try:
        adapter = tmp_path / "runs" / "full" / "adapter"
        random_adapter(adapter, r=4)
        target = mnt / "merged"
        target.mkdir()
        (target / "config.json").write_text('{"previous": "export"}\n')
        before = _tree_hash(target)
        env = clean_env(
            RUNS_DIR=str(tmp_path / "runs"), RUN_ID="full", MERGED_MODEL_PATH=str(target), OMP_NUM_THREADS="1"
        )
        proc = subprocess.Popen(
            [str(HOME / "scripts" / "merge.sh"), "--prompts", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        partial = mnt / ".merged.partial"
        deadline = time.monotonic() + 600
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        _fill(mnt / "filler")  # the disk fills up under the running export
        out, _ = proc.communicate(timeout=1200)
        clean = (
            proc.returncode != 0
            and "untouched" in out
            and _tree_hash(target) == before
            and "Traceback (most recent call last)" not in out.split("[error]")[-1]
        )
        record("fault", "disk full during export", "recovered" if clean else "not_recovered")
        assert proc.returncode != 0, out[-3000:]
        assert "untouched" in out, out[-3000:]
        assert _tree_hash(target) == before, "the previous merged model changed"
        assert not (mnt / "merged.prev").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
