"""Sum up a reliability ledger: a table per area and one line of figures; exit 1 on any bad outcome.

python tests/reliability_report.py [LEDGER]
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from reliability_ledger import AREAS, BAD, default_path, read
from rich.console import Console
from rich.table import Table


def figures(rows: list[dict[str, Any]]) -> dict[str, int]:
    by = Counter((r["area"], r["outcome"]) for r in rows)
    inputs = [r for r in rows if r["area"] in ("input", "security")]
    load = [r for r in rows if r["area"] == "load"]
    return {
        "inputs": len(inputs),
        "clear_errors": sum(1 for r in inputs if r["outcome"] in ("clear_error", "works", "refused", "passed")),
        "tracebacks": sum(1 for r in rows if r["outcome"] == "traceback"),
        "damaged": sum(1 for r in rows if r["outcome"] == "damaged"),
        "faults": sum(by[("fault", o)] for o in ("recovered", "not_recovered")),
        "recovered": by[("fault", "recovered")],
        "requests": sum(int(r.get("sent", 0)) for r in load),
        "completed": sum(int(r.get("completed", 0)) for r in load),
        "refused": sum(int(r.get("refused", 0)) for r in load),
        "lost": sum(int(r.get("lost", 0)) for r in load),
    }


def summary_line(f: dict[str, int]) -> str:
    return (
        f"inputs tried {f['inputs']} / clear errors {f['clear_errors']} / tracebacks {f['tracebacks']} / "
        f"files damaged {f['damaged']}, faults injected {f['faults']} / recovered {f['recovered']}, "
        f"requests sent {f['requests']} / completed {f['completed']} / cleanly refused {f['refused']} / "
        f"lost {f['lost']}"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else default_path()
    rows = read(path)
    console = Console()
    if not rows:
        console.print(f"no rows in {path}: did the reliability tests run?")
        return 1
    table = Table(title=f"reliability ledger: {path}")
    for col in ("area", "cases", "outcomes", "bad cases"):
        table.add_column(col)
    for area in AREAS:
        mine = [r for r in rows if r["area"] == area]
        if not mine:
            continue
        outcomes = Counter(r["outcome"] for r in mine)
        bad = [r["case"] for r in mine if r["outcome"] in BAD]
        table.add_row(
            area,
            str(len(mine)),
            ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
            "; ".join(bad) or "-",
        )
    console.print(table)
    f = figures(rows)
    console.print(summary_line(f), soft_wrap=True)
    return 1 if any(r["outcome"] in BAD for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
