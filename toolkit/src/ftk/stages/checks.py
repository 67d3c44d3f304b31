"""A stage's preflight: the doctor registry's checks of that stage, shown as a table, refusing on any FAIL."""

from __future__ import annotations

from rich.table import Table

from ftk.console import UserError, err_console, print_error, warn
from ftk.doctor import registry
from ftk.settings import Settings

_MARK = {"PASS": "[green]ok[/]", "WARN": "[yellow]warn[/]", "FAIL": "[bold red]FAIL[/]"}


def line(row: registry.Row) -> str:
    """One line naming the check, what was found and the fix."""
    return f"{row.check}: {row.detail}" + (f"; {row.fix}" if row.fix else "")


def require(settings: Settings, stage: str) -> list[registry.Row]:
    """Run `stage`'s checks (what `ftk doctor --stage STAGE` lists); raise when one fails, after printing all."""
    rows = registry.run(settings, registry.discover(), {stage})
    table = Table(title=f"{stage} preflight (ftk doctor --stage {stage})", title_justify="left")
    for col in ("check", "result", "detail"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.check, _MARK[r.status], r.detail)
    err_console.print(table)
    for r in rows:
        if r.status == "WARN":
            warn(line(r))
    bad = [r for r in rows if r.status == "FAIL"]
    for r in bad:
        print_error(line(r))
    if bad:
        raise UserError(f"{stage} preflight: {len(bad)} check(s) failed (above); nothing was started")
    return rows
