"""`ftk download`: the download stage (ModelScope `snapshot_download` or a local folder), then checks."""

from __future__ import annotations

from typing import Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ftk.console import EXIT_INVALID, console, err_console, info, warn
from ftk.download import stage
from ftk.hf.folder import failures
from ftk.settings import get_settings

_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def download(
    model_id: str = typer.Option(
        None, "--model-id", help="ModelScope id (Org/Name) or a local folder; default MODEL_ID"
    ),
    revision: str = typer.Option(None, "--revision", help="branch, tag or commit; default MODEL_REVISION"),
    offline: bool = typer.Option(
        False,
        "--offline",
        help="never touch the network: use the cache (ModelScope local_files_only) or the local folder",
    ),
) -> None:
    """Fetch the base model from ModelScope into MODELSCOPE_CACHE (or take a local folder) and verify it:
    config.json, weights, tokenizer, chat template, processor files. Prints the model path on stdout."""
    settings = get_settings()
    plan = stage.plan(settings, model_id, revision)
    info(stage.describe(plan))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    ) as progress:

        def start(name: str, size: int) -> tuple[TaskID, int]:
            if not err_console.is_terminal:
                err_console.print(f":: downloading {name} ({size} bytes)", markup=False)
            return progress.add_task(name, total=size or None), size

        def advance(task: Any, n: int) -> None:
            progress.advance(task[0], n)

        def end(task: Any) -> None:
            progress.update(task[0], completed=task[1])

        outcome = stage.run(settings, plan, offline=offline, callbacks=(start, advance, end))
    for note in outcome.notes:
        warn(note)
    table = Table(title=f"{outcome.path} ({outcome.source})", title_justify="left")
    for col in ("check", "result", "found", "fix"):
        table.add_column(col, overflow="fold")
    for f in outcome.findings:
        table.add_row(f.what, _STYLE[f.level], f.detail, f.fix)
    err_console.print(table)
    bad = failures(outcome.findings)
    if bad:
        for f in bad:
            err_console.print(f"[bold red]error:[/] {outcome.path}: {f.what}: {f.detail}; {f.fix}", soft_wrap=True)
        raise typer.Exit(EXIT_INVALID)
    if outcome.path.resolve() != plan.target.resolve():
        warn(f"the model is at {outcome.path}, train and serve read {plan.target}")
    console.print(str(outcome.path), markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("download")(download)
