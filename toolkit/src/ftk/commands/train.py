"""`ftk train manifest`: the run record, written in the train venv (its library versions); `ftk run train` calls it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from ftk.console import UserError, err_console

train_app = typer.Typer(help="Training run records (`ftk run train` is the stage).", no_args_is_help=True)


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
