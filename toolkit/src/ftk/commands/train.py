"""`ftk train preflight|manifest|state`: the Python side of scripts/train.sh."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from ftk.console import UserError, console, err_console, info
from ftk.files import write_atomic
from ftk.recipes import render as recipes
from ftk.settings import get_settings
from ftk.train import preflight as checks

train_app = typer.Typer(help="Training run checks and records (scripts/train.sh calls these).", no_args_is_help=True)


@train_app.command("preflight")
def preflight(
    recipe: Path = typer.Option(None, "--recipe", help="train recipe (default: TRAIN_RECIPE)"),
    run_id: str = typer.Option(None, "--run-id", help="run folder runs/<run-id>/ (default: RUN_ID)"),
    sets: list[str] = typer.Option(None, "--set", help="override a LLaMA-Factory key: --set lora_rank=16 (repeat)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a completed adapter (kept as adapter.prev)"),
    no_validate: bool = typer.Option(
        False, "--no-validate-data", help="skip the dataset validator (registered files are still checked)"
    ),
) -> None:
    """Check the run folder, model, data sets and template; then write runs/<run-id>/train.yaml.

    Nothing is written when a check fails. An interrupted run (checkpoints, no final adapter) is resumed from
    its last checkpoint: the rendered config gets resume_from_checkpoint.
    """
    s = get_settings()
    if run_id:
        s = s.model_copy(update={"run_id": run_id})
    state = checks.check_output(s, overwrite)
    extra = recipes.parse_sets(sets or [])
    if state.kind == "resume" and not overwrite:
        extra.setdefault("resume_from_checkpoint", str(state.checkpoint))
    rendered = recipes.render(recipe or s.path("train_recipe"), s, "train", extra)
    report = checks.run(rendered, s, state, validate_data=not no_validate)
    if state.kind == "complete" or (state.kind in ("stale", "resume") and overwrite):
        prev = checks.set_aside(s.run_dir)
        info(f"the previous adapter of run {s.run_id} is kept in {prev}")
    elif state.kind == "stale":
        prev = checks.set_aside(s.run_dir)
        info(f"{s.run_dir / 'adapter'} held no checkpoint to resume from; its files were moved to {prev}")
    target = s.run_dir / "train.yaml"
    write_atomic(target, recipes.to_yaml(rendered))
    report.ok("config", str(target))
    table = Table(title=f"train preflight: run {s.run_id}", show_header=True)
    table.add_column("check")
    table.add_column("result")
    for check, detail in report.rows:
        table.add_row(f"[green]ok[/] {check}", detail)
    err_console.print(table)
    if state.kind == "resume" and not overwrite:
        info(f"resuming the interrupted run from {state.checkpoint}")
    console.print(str(target), markup=False)


@train_app.command("state")
def state(run_id: str = typer.Option(None, "--run-id", help="run id (default: RUN_ID)")) -> None:
    """What runs/<run-id>/adapter holds: fresh, complete, resume <checkpoint> or stale."""
    s = get_settings()
    if run_id:
        s = s.model_copy(update={"run_id": run_id})
    st = checks.output_state(s.run_dir / "adapter")
    console.print(f"{st.kind} {st.checkpoint or ''}".strip(), markup=False)


@train_app.command("manifest")
def manifest(
    run_dir: Path = typer.Argument(..., help="the run folder (runs/<run-id>)"),
    started: float = typer.Option(None, "--started", help="start time (seconds since the epoch) for the duration"),
    resumed_from: str = typer.Option(None, "--resumed-from", help="checkpoint the run resumed from"),
) -> None:
    """Write runs/<run-id>/manifest.json (run it in the train venv: it records that venv's versions)."""
    from ftk.train import manifest as manifests

    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a run folder; give runs/<run-id>")
    target = manifests.write(run_dir.resolve(), started or time.time(), resumed_from)
    data = json.loads(target.read_text(encoding="utf-8"))
    table = Table(title=f"run {data['run_id']}")
    table.add_column("what")
    table.add_column("value")
    loss = data["loss"]
    table.add_row(
        "adapter",
        f"{data['adapter']['path']} (rank {data['adapter']['rank']}, targets {data['adapter']['target_modules']})",
    )
    table.add_row("loss", f"{loss['first']} -> {loss['final']} over {loss['steps']} steps")
    table.add_row("loss plot", str(data["loss_plot"]))
    table.add_row("duration", f"{data['duration_s']} s")
    table.add_row("manifest", str(target))
    err_console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
