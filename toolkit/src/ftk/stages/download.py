"""The download stage: the cache checks, then the model from ModelScope (or a local folder), verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

from ftk.console import UserError, err_console, info, print_error, warn
from ftk.download import stage
from ftk.hf.folder import failures
from ftk.settings import Settings
from ftk.stages import checks

_STYLE = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )


def fetch(s: Settings, plan: stage.Plan, offline: bool) -> stage.Outcome:
    with _progress() as progress:

        def start(name: str, size: int) -> tuple[TaskID, int]:
            if not err_console.is_terminal:
                err_console.print(f":: downloading {name} ({size} bytes)", markup=False)
            return progress.add_task(name, total=size or None), size

        def advance(task: Any, n: int) -> None:
            progress.advance(task[0], n)

        def end(task: Any) -> None:
            progress.update(task[0], completed=task[1])

        return stage.run(s, plan, offline=offline, callbacks=(start, advance, end))


def report(outcome: stage.Outcome) -> None:
    for note in outcome.notes:
        warn(note)
    table = Table(title=f"{outcome.path} ({outcome.source})", title_justify="left")
    for col in ("check", "result", "found", "fix"):
        table.add_column(col, overflow="fold")
    for f in outcome.findings:
        table.add_row(f.what, _STYLE[f.level], f.detail, f.fix)
    err_console.print(table)


def run(s: Settings, model_id: str | None, revision: str | None, offline: bool) -> Path:
    """The verified model folder; raises (after one line per problem) when it is incomplete."""
    plan = stage.plan(s, model_id, revision)
    info(stage.describe(plan))
    checks.require(s.model_copy(update={"model_id": plan.model_id}), "download")
    outcome = fetch(s, plan, offline)
    report(outcome)
    bad = failures(outcome.findings)
    for f in bad:
        print_error(f"{outcome.path}: {f.what}: {f.detail}; {f.fix}")
    if bad:
        raise UserError(f"{outcome.path} is not a complete model ({len(bad)} problem(s) above)")
    if outcome.path.resolve() != plan.target.resolve():
        warn(f"the model is at {outcome.path}, train and serve read {plan.target}")
    return outcome.path
