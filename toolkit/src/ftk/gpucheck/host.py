"""The GPU host: card, driver and CUDA from nvidia-smi, library versions of each python, memory bandwidth, and
peak GPU memory of a command (nvidia-smi polled while it runs).

`python -m ftk.gpucheck.host bandwidth|versions` runs inside the train or serve python (torch and the stage's
libraries are there, not in the toolkit venv) and prints one JSON object.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import threading
import time

PACKAGES = ("torch", "transformers", "peft", "llamafactory", "vllm", "bitsandbytes", "accelerate", "trl", "triton")


def nvidia_smi(fields: list[str]) -> list[dict[str, str]]:
    """One dict per GPU with the asked --query-gpu fields; [] without nvidia-smi or GPUs."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [dict(zip(fields, (x.strip() for x in line.split(",")), strict=False)) for line in out.splitlines() if line]


def cuda_version() -> str:
    """The CUDA version the driver supports (nvidia-smi's header), or ''."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ""
    try:
        out = subprocess.run([smi], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    marker = "CUDA Version:"
    for line in out.splitlines():
        if marker in line:
            return line.split(marker, 1)[1].strip(" |").split()[0]
    return ""


def host_info() -> dict[str, str]:
    gpus = nvidia_smi(["name", "driver_version", "memory.total"])
    if not gpus:
        return {"gpu": "none visible (nvidia-smi)"}
    first = gpus[0]
    return {
        "gpu": f"{len(gpus)} x {first.get('name', '?')}",
        "gpu_memory_mib": first.get("memory.total", "?"),
        "driver": first.get("driver_version", "?"),
        "cuda_driver": cuda_version(),
    }


def versions_of(python: str) -> dict[str, str]:
    """Versions of PACKAGES as `python` sees them (its own site-packages and PYTHONPATH)."""
    try:
        out = subprocess.run(
            [python, "-m", "ftk.gpucheck.host", "versions"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as err:
        return {"error": f"{python}: {err}"}


def _local_versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        import torch  # optional: this runs in each stage's python, and only some have torch

        found["torch.cuda"] = str(torch.version.cuda)
    except ImportError:
        pass
    return found


def _bandwidth(gib: float = 2.0, repeats: int = 20) -> dict[str, float]:
    """Device-to-device copy bandwidth (bytes read + written per second) of GPU 0, the best of `repeats`."""
    import torch  # the train python runs this (`python -m ftk.gpucheck.host bandwidth`); the toolkit's need not

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: the bandwidth is measured on a GPU")
    n = int(gib * 1024**3) // 2
    a = torch.empty(n, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        b.copy_(a)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return {"bandwidth_bytes_per_s": 2 * n * 2 / best, "copy_bytes": 2 * n * 2, "seconds": best}


class GpuMemoryPeak:
    """Polls nvidia-smi's memory.used of every GPU while a command runs; `peak_mib` is the peak above the baseline."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.baseline = self._used()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def _used() -> int:
        return sum(int(float(g.get("memory.used", "0") or 0)) for g in nvidia_smi(["memory.used"]))

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used())
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuMemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> int:
        return self.peak - self.baseline


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["versions"]:
        print(json.dumps(_local_versions()))
    elif args == ["bandwidth"]:
        print(json.dumps(_bandwidth()))
    else:
        print(f"usage: python -m ftk.gpucheck.host versions|bandwidth (got {args})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
