"""How a validation run is shown: one line per problem, a summary table, or a JSON report for machines."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ftk.dataset.problems import KINDS, ProblemSink
from ftk.dataset.validate import FileReport


def print_problems(console: Console, sink: ProblemSink) -> None:
    for problem in sink.kept:
        console.print(problem.render(), markup=False, highlight=False, soft_wrap=True)
    hidden = sink.total - len(sink.kept)
    if hidden > 0:
        console.print(
            f"... and {hidden} more problem(s) not shown (counted below; raise --max-problems to see them)",
            markup=False,
            soft_wrap=True,
        )


def by_kind(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {counts[kind]}" for kind in KINDS if counts.get(kind))


def summary_table(reports: list[FileReport]) -> Table:
    table = Table(title="dataset validation", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("format")
    table.add_column("data")
    table.add_column("samples", justify="right")
    table.add_column("errors", justify="right")
    table.add_column("warnings", justify="right")
    table.add_column("by kind")
    table.add_column("result")
    for r in reports:
        result = "[green]valid[/]" if r.valid else "[red]invalid[/]"
        kinds = by_kind(r.problems + r.warnings) or "-"
        warned = f"{sum(r.warnings.values()):,}"
        table.add_row(r.file, r.format, r.kind, f"{r.samples:,}", f"{r.total:,}", warned, kinds, result)
    return table


def json_report(reports: list[FileReport], sink: ProblemSink) -> dict[str, Any]:
    return {
        "valid": all(r.valid for r in reports),
        "files": [
            {
                "file": r.file,
                "format": r.format,
                "data": r.kind,
                "samples": r.samples,
                "valid": r.valid,
                "problems": r.total,
                "problems_by_kind": dict(r.problems),
                "warnings": sum(r.warnings.values()),
                "warnings_by_kind": dict(r.warnings),
                "dedup_bytes": r.dedup_bytes,
                "entry": r.layout.entry() if r.layout else None,
            }
            for r in reports
        ],
        "problems_total": sink.total,
        "problems_shown": len(sink.kept),
        "problems": [p.as_dict() for p in sink.kept],
        "kinds": KINDS,
    }
