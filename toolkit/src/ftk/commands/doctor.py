"""`ftk doctor`: preflight checks of the host and the stages, PASS/WARN/FAIL with the fix; exit 1 on FAIL."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from ftk.console import EXIT_INVALID, console
from ftk.doctor import registry
from ftk.settings import get_settings

_STYLE = {"PASS": "[green]PASS[/]", "WARN": "[yellow]WARN[/]", "FAIL": "[bold red]FAIL[/]"}


def doctor(
    as_json: bool = typer.Option(False, "--json", help="print the results as JSON (for scripts)"),
    stage: list[str] = typer.Option(
        None, "--stage", help="only this stage's checks (repeatable): " + ", ".join(registry.STAGE_ORDER)
    ),
) -> None:
    """Check the host (Python, venvs, Debian tools, GPUs, disk, ports, .env) and the stages' preconditions."""
    checks = registry.discover()
    known = {c.stage for c in checks}
    unknown = sorted(set(stage or []) - known)
    if unknown:
        raise typer.BadParameter(
            f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", param_hint="--stage"
        )
    rows = registry.run(get_settings(), checks, set(stage or []))
    counts = {s: sum(r.status == s for r in rows) for s in ("PASS", "WARN", "FAIL")}
    if as_json:
        print(json.dumps({"results": [r.as_dict() for r in rows], "summary": counts}, indent=2))
    else:
        table = Table(title="ftk doctor", title_justify="left")
        for col in ("stage", "check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r.stage, r.check, _STYLE[r.status], r.detail, r.fix)
        console.print(table)
        console.print(f"{counts['PASS']} passed, {counts['WARN']} warnings, {counts['FAIL']} failed")
    if counts["FAIL"]:
        raise typer.Exit(EXIT_INVALID)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
