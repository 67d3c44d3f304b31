"""Benchmark: `ftk dataset validate` against LLaMA-Factory's own data pipeline, on the same files, side by side.

One generated alpaca file (unique samples, so every one is parsed, checked, hashed and tokenized) is validated
without and with `--tokenizer` (the default model's tokenizer.json, counted in parallel batches), each in its own
subprocess, and loaded by LLaMA-Factory's `get_dataset` (converter and SFT processor, tokenizing with the same
model; `ftk.dataset.lf_oracle` in the train venv, its own timing of the pipeline and the wall time with imports).
The table shows seconds, samples/s and each figure's ratio to LLaMA-Factory's pipeline.

    scripts/bench.sh validate_vs_llamafactory -- [--samples 100000] [--model models/SmolLM2-135M-Instruct]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ftk import paths
from rich.console import Console
from rich.table import Table


def write_alpaca(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8", buffering=1 << 20) as f:
        for i in range(n):
            row = {"instruction": f"Sample {i}: what is {i} plus {i}?", "input": "", "output": f"{2 * i}."}
            f.write(json.dumps(row) + "\n")


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--model", type=Path, default=Path("models/SmolLM2-135M-Instruct"))
    ns = parser.parse_args(argv)
    model = paths.resolve(str(ns.model))
    train_python = paths.venv_bin("train", "python")
    console = Console()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="ftk-bench-vs-lf-") as tmp:
        work = Path(tmp)
        data = work / "bench.jsonl"
        write_alpaca(data, ns.samples)
        (work / "dataset_info.json").write_text(json.dumps({"bench": {"file_name": data.name}}), encoding="utf-8")
        base = [sys.executable, "-m", "ftk", "dataset", "validate", str(data), "--json", "--max-problems", "0"]
        for label, extra in (
            ("ftk dataset validate", []),
            ("ftk dataset validate --tokenizer", ["--tokenizer", str(model), "--cutoff-len", "1024"]),
        ):
            seconds, proc = timed([*base, *extra])
            if proc.returncode not in (0, 1):
                console.print(proc.stderr[-2000:], markup=False)
                return 1
            rows.append((label, seconds))
        cases = work / "cases.json"
        cases.write_text(json.dumps([{"name": "bench", "dataset_dir": str(work), "model": str(model)}]))
        wall, proc = timed([str(train_python), "-m", "ftk.dataset.lf_oracle", str(cases), "--out", str(work / "o")])
        if proc.returncode != 0:
            console.print(proc.stderr[-2000:], markup=False)
            return 1
        result = json.loads((work / "o").read_text(encoding="utf-8"))[0]
        lf = float(result["seconds"])
        rows += [("LLaMA-Factory get_dataset (sft)", lf), ("LLaMA-Factory, with imports and start-up", wall)]
    table = Table(title=f"validator vs LLaMA-Factory's data pipeline, {ns.samples:,} alpaca samples")
    for col in ("run", "seconds", "samples/s", "vs LLaMA-Factory"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for label, seconds in rows:
        table.add_row(label, f"{seconds:.2f}", f"{ns.samples / seconds:,.0f}", f"{seconds / lf:.2f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
