"""The host-resource verdicts every stage asks for (GPUs, disk, port, writable folder), written once.

Stage checks in `checks_*.py` call these with the setting that sets the need, so the message names that key.
"""

from __future__ import annotations

from pathlib import Path

from ftk import host, ports
from ftk.doctor.registry import Result, failed, passed


def gpus(key: str, need: int, allow_cpu: bool, what: str) -> Result:
    have, how = host.visible_gpus()
    item = f"{key}={need}"
    if need == 0:
        return passed(f"{what} runs on CPU ({how})", item)
    if have >= need:
        return passed(f"{have} visible ({how})", item)
    if allow_cpu:
        return passed(
            f"{have} visible ({how}), {need} wanted; ALLOW_CPU=true: runs on CPU (set ALLOW_CPU=false on a GPU "
            "host to make this a failure)",
            item,
        )
    return failed(
        f"{what} needs {need} GPU(s) but {have} visible ({how})",
        f"lower {key}, fix CUDA_VISIBLE_DEVICES, or set ALLOW_CPU=true on a CPU host",
        item,
    )


def disk(key: str, folder: Path, need_mib: int) -> Result:
    free = host.free_mib(folder)
    if free < need_mib:
        return failed(
            f"only {free} MiB free on the disk of {folder}, need {need_mib} MiB",
            f"free space there or point {key} to a larger disk",
            key,
        )
    return passed(f"{free} MiB free for {folder} (needs {need_mib})", key)


def port_free(key: str, bind: str, port: int) -> Result:
    item = f"{key}={port}"
    if ports.port_in_use(bind, port):
        return failed(
            f"port {port} on {bind} is already in use",
            f"stop what listens there (ss -ltnp 'sport = :{port}') or set another {key} in .env",
            item,
        )
    return passed(f"{bind}:{port} free", item)


def writable(key: str, folder: Path) -> Result:
    why = host.unwritable(folder)
    if why:
        return failed(why, f"fix its owner or mode (chown/chmod), or point {key} elsewhere", key)
    return passed(f"{folder} writable", key)
