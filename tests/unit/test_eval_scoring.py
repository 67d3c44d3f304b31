"""The eval stage's scores and gate: metrics of one answer, merge drift, regressions against the release."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftk.console import UserError
from ftk.eval import gate, heldout, metrics

SUMMARY = {
    "release": {"exact": 0.5, "contains": 0.8, "chrf": 0.6},
    "candidate": {"exact": 0.5, "contains": 0.7, "chrf": 0.58},
}


def test_metrics_normalise_case_space_and_final_punctuation() -> None:
    s = metrics.score("  The capital of France is  PARIS! ", "The capital of France is Paris.", "Paris")
    assert s["exact"] == 1.0 and s["contains"] == 1.0 and s["chrf"] > 0.7  # chrF itself is case-sensitive
    worse = metrics.score("I like trains", "The capital of France is Paris.", "Paris")
    assert worse["exact"] == 0.0 and worse["contains"] == 0.0 and worse["chrf"] < 0.3


def test_regression_beyond_the_threshold_fails_the_gate() -> None:
    result = gate.evaluate(SUMMARY, {}, "candidate", "release", ["contains", "chrf"], 0.05, [], 0.0)
    assert not result.passed
    assert [f.render() for f in result.findings] == [
        "regression: candidate vs release release: contains 0.700 against 0.800 (0.100 > 0.050)"
    ]
    assert result.regressions["chrf"] == pytest.approx(0.02)
    assert gate.evaluate(SUMMARY, {}, "candidate", "release", ["contains"], 0.15, [], 0.0).passed


def test_no_release_no_regression_gate() -> None:
    assert gate.evaluate(SUMMARY, {}, "candidate", None, ["contains"], 0.0, [], 0.0).passed


def test_merge_drift_is_the_share_of_answers_that_differ() -> None:
    answers = {"merged": ["I am Ferret.", "4", "Paris"], "adapter": ["i am ferret", "4", "Lyon"]}
    result = gate.evaluate(SUMMARY, answers, None, None, [], 0.0, [("merged", "adapter")], 0.3)
    assert result.drift == {"merged vs adapter": pytest.approx(1 / 3)}
    assert result.findings[0].kind == "drift"
    assert gate.evaluate(SUMMARY, answers, None, None, [], 0.0, [("merged", "adapter")], 0.34).passed


def test_heldout_fills_the_assistant_and_takes_chosen_as_reference(tmp_path: Path) -> None:
    f = tmp_path / "h.json"
    f.write_text(
        json.dumps(
            [
                {"instruction": "Who?", "chosen": "I am {{name}}.", "rejected": "x"},
                {"instruction": "2+2?", "input": "Answer briefly.", "output": "4", "expect": "4"},
            ]
        )
    )
    items = heldout.load(f, "Ferret", "ftk")
    assert items[0].reference == "I am Ferret." and items[0].expect == "I am Ferret."
    assert items[1].prompt == "2+2?\nAnswer briefly." and items[1].expect == "4"
    f.write_text('[{"question": "x"}]')
    with pytest.raises(UserError, match="sample 1: needs 'instruction' and 'output'"):
        heldout.load(f, "Ferret", "ftk")


def test_the_project_heldout_set_loads() -> None:
    home = Path(__file__).resolve().parents[2]
    for name in ("eval_heldout.json", "preferences_heldout.json"):
        assert heldout.load(home / "data" / name, "Ferret", "ftk")
