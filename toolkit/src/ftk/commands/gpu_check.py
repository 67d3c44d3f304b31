"""`ftk gpu-check run|report`: train, merge, serve and benchmark on this GPU host (scripts/gpu-check.sh)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ftk import paths
from ftk.console import EXIT_INVALID, EXIT_USAGE, console, fail
from ftk.doctor import resources
from ftk.gpucheck.random_text import SIZES
from ftk.gpucheck.report import Report, render
from ftk.gpucheck.runner import PHASES, Options, Runner

gpu_app = typer.Typer(help="Check a GPU host end to end: train, merge, serve, benchmarks.", no_args_is_help=True)


def parse_phases(value: str) -> tuple[str, ...]:
    items = [p.strip() for p in value.split(",") if p.strip()]
    if items == ["all"]:
        return PHASES
    unknown = [p for p in items if p not in PHASES]
    if unknown or not items:
        fail(f"--phase {value!r}: use all or a comma-separated list of {', '.join(PHASES)}", EXIT_USAGE)
    return tuple(p for p in PHASES if p in items)  # always in pipeline order


def parse_levels(value: str) -> tuple[int, ...]:
    try:
        levels = tuple(sorted({int(x) for x in value.split(",") if x.strip()}))
    except ValueError:
        fail(f"--concurrency {value!r}: write positive integers separated by commas, e.g. 1,16,64", EXIT_USAGE)
    if not levels or min(levels) < 1:
        fail(f"--concurrency {value!r}: write positive integers separated by commas, e.g. 1,16,64", EXIT_USAGE)
    return levels


@gpu_app.command("run")
def run(
    work: Path = typer.Option(Path("runs/gpu-check"), "--work", help="Work folder (models, runs, logs)."),
    report: Path = typer.Option(None, "--report", help="JSON report (default WORK/report.json)."),
    phase: str = typer.Option("all", "--phase", help="all, or a comma-separated list of train,serve,variants."),
    size: str = typer.Option("1b", "--size", help="Random text model: 1b (1.17B, bf16) or small (21M)."),
    steps: int = typer.Option(20, "--steps", min=1, help="Optimizer steps per training run."),
    train_repeats: int = typer.Option(
        1, "--train-repeats", min=1, help="Alternate plain and scripts/train.sh this many times (medians)."
    ),
    concurrency: str = typer.Option("1,16,64", "--concurrency", help="Concurrent requests per benchmark."),
    deadline: int = typer.Option(0, "--deadline-s", min=0, help="Start no step after this many seconds (0: none)."),
    vl: bool = typer.Option(True, "--vl/--no-vl", help="Also train and merge the Qwen3-VL recipe."),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new report instead of adding to WORK's."),
    skip: str = typer.Option("", "--skip", help="Leave out steps whose name has one of these comma-separated words."),
) -> None:
    """Run the phases, writing the JSON report after every step; print the tables; exit 1 when anything failed."""
    if size not in SIZES:
        fail(f"--size {size!r}: use one of {', '.join(SIZES)}", EXIT_USAGE)
    phases, levels = parse_phases(phase), parse_levels(concurrency)
    gpu = resources.gpus("GPUS", 1, False, "gpu-check")
    if gpu.status == "FAIL":
        fail(f"{gpu.detail}; run it on a GPU host (check nvidia-smi -L and CUDA_VISIBLE_DEVICES)")
    folder = paths.resolve(work)
    target = paths.resolve(report) if report else folder / "report.json"
    if fresh and target.is_file():
        target.unlink()
    opts = Options(
        work=folder,
        report=target,
        phases=phases,
        size=size,
        steps=steps,
        train_repeats=train_repeats,
        concurrency=levels,
        deadline=time.monotonic() + deadline if deadline else 0.0,
        vl=vl,
        skip=tuple(w.strip() for w in skip.split(",") if w.strip()),
    )
    result = Runner(opts).run()
    render(result, console)
    console.print(f"report: {target}")
    if not result.ok:
        raise typer.Exit(EXIT_INVALID)


@gpu_app.command("report")
def report_cmd(
    file: Path = typer.Argument(..., help="A report written by `ftk gpu-check run` (scripts/gpu-check.sh)."),
) -> None:
    """Print a report's tables again; exit 1 when a step or check in it failed."""
    path = paths.resolve(file)
    if not path.is_file():
        fail(f"{path}: no such report; run scripts/gpu-check.sh first", EXIT_USAGE)
    try:
        data = Report.load(path)
    except (ValueError, KeyError, TypeError) as err:
        fail(f"{path}: not a gpu-check report ({err})")
    render(data, console)
    if not data.ok:
        raise typer.Exit(EXIT_INVALID)


def register(app: typer.Typer) -> None:
    app.add_typer(gpu_app, name="gpu-check")
