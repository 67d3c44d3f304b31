"""Benchmark: what scripts/train.sh costs against a plain `llamafactory-cli train` of the same config.

Both train the default model on the identity data set for the same number of steps, from the one config
scripts/train.sh rendered (the plain run only gets its own output_dir). Rounds alternate (plain, wrapper, ...)
so load drift on a shared machine hits both alike. Figures per path (median over rounds): training tokens/s
(LLaMA-Factory's effective_tokens_per_sec), train_runtime, wall time (the wrapper's includes its preflight)
and peak RSS of the process tree. The ratio column is the median of the per-round wrapper / plain ratios;
goal: tokens/s within noise (~1.0), and the noise is printed too: the spread of the per-round ratios. Both paths
run with OMP_NUM_THREADS=1 (unless set), so a job on the machine's other core disturbs them less.

    scripts/bench.sh train_overhead -- [--steps 8] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml
from ftk import paths
from rich.console import Console
from rich.table import Table

console = Console()


def _peak_rss(proc: subprocess.Popen[bytes], stop: threading.Event, out: list[int]) -> None:
    """Poll the RSS of the process tree (the trainer is a child of the CLI, or of bash)."""
    try:
        root = psutil.Process(proc.pid)
    except psutil.NoSuchProcess:
        return
    peak = 0
    while not stop.is_set():
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
        except psutil.NoSuchProcess:
            break
        peak = max(peak, total)
        stop.wait(0.2)
    out.append(peak)


def _run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of one command; its output goes to `log`."""
    started = time.perf_counter()
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
        stop, peak = threading.Event(), []
        watcher = threading.Thread(target=_peak_rss, args=(proc, stop, peak), daemon=True)
        watcher.start()
        rc = proc.wait()
        stop.set()
        watcher.join()
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {rc}); see {log}")
    return time.perf_counter() - started, (peak[0] if peak else 0)


def _metrics(adapter: Path) -> dict[str, float]:
    return json.loads((adapter / "train_results.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="plain/wrapper pairs (order alternates)")
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args(argv)
    home = paths.project_home()
    work = args.keep or Path(tempfile.mkdtemp(prefix="ftk-bench-train-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTK_")}
    env.update(
        FTK_HOME=str(home),
        FTK_ENV_FILE=str(work / "none.env"),
        RUNS_DIR=str(work / "runs"),
        DATASET_DIR=str(data),
        MEDIA_ROOT=str(data),
        NO_COLOR="1",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
    )
    ftk = str(paths.venv_bin("toolkit", "ftk"))
    lf = str(paths.venv_bin("train", "llamafactory-cli"))
    if not data.joinpath("dataset_info.json").is_file():
        subprocess.run(
            [
                ftk,
                "dataset",
                "register",
                str(home / "data" / "identity.json"),
                "--name",
                "identity",
                "--dataset-dir",
                str(data),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    sets = [
        "--set",
        f"max_steps={args.steps}",
        "--set",
        f"save_steps={args.steps * 10}",
        "--set",
        "plot_loss=false",
    ]
    results: dict[str, list[dict[str, float]]] = {"plain": [], "wrapper": []}
    for i in range(args.rounds):
        run_id = f"wrapper{i}"
        shutil.rmtree(work / "runs" / run_id, ignore_errors=True)
        shutil.rmtree(work / "runs" / f"plain{i}", ignore_errors=True)
        # render once through the wrapper's own path so both train the very same config
        subprocess.run(
            [ftk, "config", "render", "train", "--run-id", run_id, *sets],
            env=env,
            check=True,
            capture_output=True,
        )
        cfg = yaml.safe_load((work / "runs" / run_id / "train.yaml").read_text(encoding="utf-8"))
        plain_dir = work / "runs" / f"plain{i}"
        plain_dir.mkdir(parents=True)
        cfg["output_dir"] = str(plain_dir / "adapter")
        (plain_dir / "train.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        shutil.rmtree(work / "runs" / run_id)
        runs = {
            "plain": ([lf, "train", str(plain_dir / "train.yaml")], plain_dir),
            "wrapper": (
                [str(home / "scripts" / "train.sh"), "--run-id", run_id, *sets],
                work / "runs" / run_id,
            ),
        }
        order = ["plain", "wrapper"] if i % 2 == 0 else ["wrapper", "plain"]  # alternate: drift hits both
        for name in order:
            cmd, run_dir = runs[name]
            console.print(
                f"round {i + 1}/{args.rounds}: {name} ({' '.join(Path(c).name for c in cmd[:2])}, {args.steps} steps)"
            )
            wall, rss = _run(cmd, env, run_dir.with_suffix(".log"))
            results[name].append({**_metrics(run_dir / "adapter"), "wall": wall, "rss": rss})

    def med(path: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in results[path])

    rows = [
        ("training tokens/s", "effective_tokens_per_sec", "{:.1f}"),
        ("train_runtime (s)", "train_runtime", "{:.1f}"),
        ("wall time incl. start-up (s)", "wall", "{:.1f}"),
        ("peak RSS of the process tree (MB)", "rss", "{:.0f}"),
    ]
    table = Table(
        title=f"train overhead: scripts/train.sh vs plain llamafactory-cli train "
        f"({args.steps} steps, {args.rounds} round(s), median)"
    )
    table.add_column("figure")
    table.add_column("plain", justify="right")
    table.add_column("scripts/train.sh", justify="right")
    table.add_column("ratio wrapper/plain (paired median)", justify="right")
    for label, key, fmt in rows:
        scale = 1e6 if key == "rss" else 1.0
        p, w = med("plain", key) / scale, med("wrapper", key) / scale
        # paired: each round's wrapper/plain, then the median (a slow spell hits one round, not the ratio)
        pairs = [b[key] / a[key] for a, b in zip(results["plain"], results["wrapper"], strict=True) if a.get(key)]
        table.add_row(label, fmt.format(p), fmt.format(w), f"{statistics.median(pairs):.3f}" if pairs else "-")
    console.print(table)
    per_round = [
        w["effective_tokens_per_sec"] / p["effective_tokens_per_sec"]
        for p, w in zip(results["plain"], results["wrapper"], strict=True)
        if p.get("effective_tokens_per_sec")
    ]
    if per_round:
        console.print(
            f"tokens/s ratio per round: {', '.join(f'{r:.3f}' for r in per_round)} "
            f"(spread {min(per_round):.3f}..{max(per_round):.3f}: the noise the median ratio is read against)"
        )
    console.print(
        "Wall time differs by the wrapper's preflight (settings, model, data set validation, template "
        "drift check); training tokens/s and memory are the figures the wrapper must not change."
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
