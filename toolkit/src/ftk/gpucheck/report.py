"""The gpu-check report: what ran (steps), what must hold (checks) and the figures measured side by side.

One JSON file (written after every step, so an interrupted run keeps what it measured) and one rich table per
comparison. Pure Python: the CPU tests build, check and render reports exactly as a GPU run does.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ftk.files import write_atomic

KV_TOLERANCE = 0.05  # the planner's KV-cache tokens may differ from vLLM's own figure by this fraction
SCHEMA = 1


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Comparison:
    """Figures of two or more variants measured in the same run: one row per measure, one column per variant."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[float | None]]] = field(default_factory=list)
    note: str = ""

    def add(self, measure: str, *values: float | None) -> None:
        if len(values) != len(self.columns):
            raise ValueError(f"{measure}: {len(values)} values for {len(self.columns)} columns ({self.columns})")
        self.rows.append((measure, list(values)))

    def value(self, measure: str, column: str) -> float | None:
        idx = self.columns.index(column)
        for name, values in self.rows:
            if name == measure:
                return values[idx]
        raise KeyError(measure)


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def kv_check(predicted: int | None, reported: int | None, tolerance: float = KV_TOLERANCE) -> Check:
    """The planner's KV-cache tokens against vLLM's: passes within `tolerance` (relative to vLLM's figure)."""
    name = f"ftk plan serve KV-cache tokens within {tolerance:.0%} of vLLM's"
    if predicted is None or reported is None:
        missing = "the planner's figure" if predicted is None else "vLLM's figure (no 'KV cache size' in its log)"
        return Check(name, False, f"not measured: {missing} is missing")
    if reported <= 0:
        return Check(name, False, f"vLLM reported {reported} KV-cache tokens")
    error = (predicted - reported) / reported
    return Check(
        name,
        abs(error) <= tolerance,
        f"predicted {predicted:,}, vLLM {reported:,} ({error:+.1%}; limit ±{tolerance:.0%})",
    )


def decode_limit(weight_bytes: int, bandwidth: float) -> float:
    """Batch-1 decode tokens/s the memory bandwidth allows: every weight is read once per token."""
    if weight_bytes <= 0 or bandwidth <= 0:
        raise ValueError("weight bytes and bandwidth must be positive")
    return bandwidth / weight_bytes


SKIPPED, NOT_STARTED = "skipped: ", "not started: "  # details of steps --skip or the deadline left out


def _ran(step: Step) -> bool:
    return not step.detail.startswith((SKIPPED, NOT_STARTED))


@dataclass
class Report:
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    host: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    figures: dict[str, float | int | str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps) and all(c.ok for c in self.checks)

    def comparison(self, title: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.title == title), None)

    def put(self, comparison: Comparison) -> None:
        """Add or replace (same title) a comparison; its figures also go flat into `figures`."""
        self.comparisons = [c for c in self.comparisons if c.title != comparison.title] + [comparison]
        for measure, values in comparison.rows:
            for column, value in zip(comparison.columns, values, strict=True):
                self.figures[f"{comparison.title} | {measure} | {column}"] = value

    def record(self, step: Step) -> None:
        """Add a step; a step of the same name from an earlier (partial) run of the same work folder is replaced,
        except by one that did not run: a later call that leaves a step out keeps what the earlier one measured."""
        earlier = next((s for s in self.steps if s.name == step.name), None)
        if earlier and _ran(earlier) and not _ran(step):
            return
        self.steps = [s for s in self.steps if s.name != step.name] + [step]

    def check(self, check: Check) -> None:
        self.checks = [c for c in self.checks if c.name != check.name] + [check]

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            "started": self.started,
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": self.host,
            "versions": self.versions,
            "settings": self.settings,
            "steps": [asdict(s) for s in self.steps],
            "checks": [asdict(c) for c in self.checks],
            "comparisons": [
                {"title": c.title, "columns": c.columns, "rows": [[m, v] for m, v in c.rows], "note": c.note}
                for c in self.comparisons
            ],
            "figures": self.figures,
        }

    def write(self, path: Path) -> None:
        """Atomically (a temporary file renamed), so a reader never sees half a report."""
        write_atomic(path, json.dumps(self.as_dict(), indent=2) + "\n", mode=0o644)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"report schema {data.get('schema')!r} is not {SCHEMA}; re-run scripts/gpu-check.sh")
        report = cls(
            started=data["started"],
            host=data.get("host", {}),
            versions=data.get("versions", {}),
            settings=data.get("settings", {}),
            steps=[Step(**s) for s in data.get("steps", [])],
            checks=[Check(**c) for c in data.get("checks", [])],
            figures=data.get("figures", {}),
        )
        report.comparisons = [
            Comparison(c["title"], c["columns"], [(m, v) for m, v in c["rows"]], c.get("note", ""))
            for c in data.get("comparisons", [])
        ]
        return report

    @classmethod
    def load(cls, path: Path) -> Report:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def fmt(value: float | int | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def tables(report: Report) -> list[Table]:
    """The report as rich tables: host and versions, steps, checks, then one table per comparison."""
    out = []
    head = Table(title="gpu-check: host", show_header=False)
    for key, value in report.host.items():
        head.add_row(key, str(value))
    for where, versions in report.versions.items():
        head.add_row(f"versions ({where})", ", ".join(f"{k} {v}" for k, v in versions.items()))
    head.add_row("started", report.started)
    out.append(head)
    steps = Table(title="gpu-check: steps")
    for col in ("step", "result", "s", "detail"):
        steps.add_column(col, justify="right" if col == "s" else "left", overflow="fold")
    for s in report.steps:
        steps.add_row(s.name, "[green]ok[/]" if s.ok else "[red]FAILED[/]", f"{s.seconds:.0f}", s.detail)
    out.append(steps)
    if report.checks:
        checks = Table(title="gpu-check: checks")
        for col in ("check", "result", "detail"):
            checks.add_column(col, overflow="fold")
        for c in report.checks:
            checks.add_row(c.name, "[green]PASS[/]" if c.ok else "[red]FAIL[/]", c.detail)
        out.append(checks)
    for comp in report.comparisons:
        table = Table(title=comp.title, caption=comp.note or None)
        table.add_column("measure")
        for col in comp.columns:
            table.add_column(col, justify="right")
        if len(comp.columns) == 2:
            table.add_column(f"{comp.columns[1]} / {comp.columns[0]}", justify="right")
        for measure, values in comp.rows:
            cells = [fmt(v) for v in values]
            if len(comp.columns) == 2:
                r = ratio(values[1], values[0])
                cells.append(f"{r:.2f}x" if r is not None else "-")
            table.add_row(measure, *cells)
        out.append(table)
    return out


def render(report: Report, console: Console) -> None:
    for table in tables(report):
        console.print(table)
    failed = [s.name for s in report.steps if not s.ok] + [c.name for c in report.checks if not c.ok]
    passed = len(report.steps) + len(report.checks) - len(failed)
    console.print(f"{passed} passed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
