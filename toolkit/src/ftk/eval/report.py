"""What `ftk eval` shows and writes: a rich table, a JSON report and a bar chart (PNG, matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # no pyplot: no display backend, nothing global
from rich.table import Table

from ftk.eval.gate import GateResult
from ftk.files import atomic_path


def table(summary: dict[str, dict[str, float]], n: int, release: str | None, candidate: str | None) -> Table:
    metrics = list(next(iter(summary.values())).keys())
    t = Table(title=f"eval on {n} held-out samples", title_justify="left")
    t.add_column("endpoint")
    for m in metrics:
        t.add_column(m, justify="right")
    for name, row in summary.items():
        label = name + (" (release)" if name == release else " (candidate)" if name == candidate else "")
        t.add_row(label, *(f"{row[m]:.3f}" for m in metrics))
    return t


def plot(summary: dict[str, dict[str, float]], path: Path) -> None:
    metrics = list(next(iter(summary.values())).keys())
    names = list(summary)
    width = 0.8 / len(names)
    fig = Figure(figsize=(1.6 + 1.4 * len(metrics), 3.2))
    ax = fig.subplots()
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(metrics))]
        ax.bar(xs, [summary[name][m] for m in metrics], width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean score")
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path, backup=".prev") as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_json(data: dict[str, Any], path: Path) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    with atomic_path(path, backup=".prev") as tmp:
        tmp.write_text(text, encoding="utf-8")


def gate_dict(gate: GateResult) -> dict[str, Any]:
    return {
        "passed": gate.passed,
        "findings": [f.__dict__ for f in gate.findings],
        "drift": gate.drift,
        "regressions": gate.regressions,
    }
