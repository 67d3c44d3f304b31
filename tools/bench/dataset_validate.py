"""Benchmark: `ftk dataset validate` on generated multimodal sharegpt JSONL of 10k, 100k and 1M samples.

Each size runs the real CLI code path (`ftk dataset validate FILE --media-root DIR --json`) in its own
subprocess, so the peak RSS (getrusage of that process) belongs to that run alone. The samples reuse a few
small images (checked once each, then cached) and differ in their text, so every one is parsed, checked and
hashed. The table shows seconds, samples/s and peak RSS per size, and the RSS ratio 1M/10k, which must stay
flat (goal: at most 1.10): the reader streams, and the exact duplicate index holds at most 65,536 samples in
memory (12 bytes each, its own column), spilling the rest to partition files resolved one at a time.

    scripts/bench.sh dataset_validate -- [--sizes 10000,100000,1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
IMAGES = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("orange", "star")]
STATS_ENV = "FTK_BENCH_STATS"


def write_dataset(path: Path, n: int) -> None:
    """n unique multimodal samples (sharegpt, OpenAI-style messages), one image each."""
    from ftk.dataset.shapes import image_name

    names = [image_name(c, s) for c, s in IMAGES]
    line = (
        '{{"messages": [{{"role": "user", "content": "<image>Sample {i}: what colour is the shape?"}}, '
        '{{"role": "assistant", "content": "{colour} ({i})"}}], "images": ["{image}"]}}\n'
    )
    with path.open("w", encoding="utf-8", buffering=1 << 20) as f:
        for i in range(n):
            k = i % len(IMAGES)
            f.write(line.format(i=i, colour=IMAGES[k][0], image=names[k]))


def child(argv: list[str]) -> None:
    """Run the CLI in this process, then record its own peak RSS and wall time."""
    from ftk.cli import main

    sys.argv = ["ftk", "dataset", "validate", *argv]
    start = time.perf_counter()
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    Path(os.environ[STATS_ENV]).write_text(json.dumps({"seconds": seconds, "peak_kib": peak_kib, "code": code}))


def run_size(work: Path, media: Path, n: int) -> dict[str, float]:
    data = work / f"mm_{n}.jsonl"
    write_dataset(data, n)
    stats = work / f"stats_{n}.json"
    env = {**os.environ, STATS_ENV: str(stats), "NO_COLOR": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            str(data),
            "--media-root",
            str(media),
            "--json",
            "--max-problems",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    result = json.loads(stats.read_text())
    report = json.loads(proc.stdout)
    if result["code"] != 0 or not report["valid"]:
        raise SystemExit(f"validation of {data} failed ({result['code']}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    file = report["files"][0]
    data.unlink()
    return {
        "samples": file["samples"],
        "seconds": result["seconds"],
        "peak_mib": result["peak_kib"] / 1024,
        "dedup_mib": file["dedup_bytes"] / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="ftk dataset validate: throughput and peak RSS by file size")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary folder)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    from ftk.dataset.shapes import make_shapes

    sizes = [int(s) for s in args.sizes.split(",")]
    console = Console()
    with tempfile.TemporaryDirectory(prefix="ftk-bench-dataset-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        media = work / "media"
        make_shapes(media)
        rows = []
        for n in sizes:
            console.print(f"validating {n:,} samples ...")
            rows.append(run_size(work, media, n))
    table = Table(
        title="ftk dataset validate: multimodal sharegpt JSONL (one subprocess per size)",
        title_justify="left",
    )
    for col in (
        "samples",
        "seconds",
        "samples/s",
        "peak RSS MiB",
        "RSS / smallest",
        "dup index MiB (memory)",
    ):
        table.add_column(col, justify="right")
    base = rows[0]["peak_mib"]
    for r in rows:
        table.add_row(
            f"{r['samples']:,}",
            f"{r['seconds']:.1f}",
            f"{r['samples'] / r['seconds']:,.0f}",
            f"{r['peak_mib']:.1f}",
            f"{r['peak_mib'] / base:.2f}",
            f"{r['dedup_mib']:.1f}",
        )
    console.print(table)
    last, first = rows[-1], rows[0]
    ratio = last["peak_mib"] / base
    console.print(
        f"RSS ratio {last['samples']:,}/{first['samples']:,} samples: {ratio:.2f} for "
        f"{last['samples'] / first['samples']:.0f}x the samples ({'flat' if ratio <= 1.10 else 'NOT flat'}: "
        "goal at most 1.10)",
        soft_wrap=True,
    )


if __name__ == "__main__":
    main()
