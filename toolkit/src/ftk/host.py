"""What this host offers a stage: visible GPUs, free disk, writable folders (the one copy of each probe; ports are
ftk.ports)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def visible_gpus() -> tuple[int, str]:
    """GPUs this process may use, and how that was found: `nvidia-smi -L`, narrowed by CUDA_VISIBLE_DEVICES."""
    total, how = 0, "no nvidia-smi"
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
            total = sum(1 for line in out.splitlines() if line.startswith("GPU "))
            how = f"nvidia-smi -L lists {total}"
        except (OSError, subprocess.SubprocessError) as err:
            how = f"nvidia-smi failed: {err}"
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        ids = [x for x in cvd.replace(" ", "").split(",") if x]
        if not ids or ids in (["-1"], ["none"]):
            return 0, f"{how}, CUDA_VISIBLE_DEVICES={cvd!r} hides all"
        if len(ids) < total:
            return len(ids), f"{how}, CUDA_VISIBLE_DEVICES={cvd!r} keeps {len(ids)}"
    return total, how


def existing_parent(path: Path) -> Path:
    """The nearest folder of `path` that exists (a folder a stage creates later is measured on its disk)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def free_mib(path: Path) -> int:
    return shutil.disk_usage(existing_parent(path)).free // 2**20


def folder_mib(path: Path) -> int:
    """Size of the files under `path` in MiB (what a copy or an export of it will need)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) // 2**20


def unwritable(folder: Path) -> str:
    """Why files cannot be written in `folder` (created when missing), or "" when they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"cannot create {folder} ({err.strerror})"
    probe = folder / f".ftk-write-test.{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError as err:
        return f"{folder} is not writable ({err.strerror})"
    probe.unlink()
    return ""
