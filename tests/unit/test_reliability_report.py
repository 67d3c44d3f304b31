"""The `make reliability` summary: figures summed from the ledger, exit 1 on any bad outcome."""

from __future__ import annotations

from pathlib import Path

import pytest
import reliability_report as report
from reliability_ledger import read, record


def _ledger(tmp_path: Path, *rows: tuple) -> Path:
    path = tmp_path / "ledger.jsonl"
    for area, case, outcome, figures in rows:
        record(area, case, outcome, path=path, **figures)
    return path


def test_figures_line_and_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _ledger(
        tmp_path,
        ("input", "a", "clear_error", {}),
        ("input", "b", "works", {}),
        ("fault", "kill", "recovered", {}),
        ("load", "streams", "completed", {"sent": 10, "completed": 8, "refused": 2, "lost": 0}),
    )
    assert report.main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "inputs tried 2 / clear errors 2 / tracebacks 0 / files damaged 0" in out
    assert "faults injected 1 / recovered 1" in out
    assert "requests sent 10 / completed 8 / cleanly refused 2 / lost 0" in out


@pytest.mark.parametrize("outcome", ["traceback", "damaged", "not_recovered", "lost", "failed", "unclear"])
def test_any_bad_outcome_fails_the_run(tmp_path: Path, outcome: str) -> None:
    area = "fault" if outcome == "not_recovered" else "input"
    path = _ledger(tmp_path, ("input", "fine", "clear_error", {}), (area, "bad", outcome, {}))
    assert report.main([str(path)]) == 1


def test_unknown_outcome_is_refused_and_rows_are_json_lines(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outcome 'meh'"):
        record("input", "x", "meh", path=tmp_path / "l.jsonl")
    path = _ledger(tmp_path, ("security", "401", "refused", {"status": 401}))
    assert read(path) == [{"area": "security", "case": "401", "outcome": "refused", "status": 401}]


def test_empty_ledger_is_a_failure(tmp_path: Path) -> None:
    assert report.main([str(tmp_path / "none.jsonl")]) == 1
