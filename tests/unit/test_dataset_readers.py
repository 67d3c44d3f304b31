"""The streaming readers: same values and error positions as `json`, whatever the chunk size."""

from __future__ import annotations

import json
import random

import pytest
from ftk.dataset.readers import ParseIssue, Record, iter_samples


def _samples(n: int) -> list[dict[str, object]]:
    rng = random.Random(7)
    return [
        {
            "instruction": "é" * rng.randint(0, 40) + f" {i}",
            "n": rng.randint(-5, 10**6),
            "f": 1.5e3,
            "nested": {"a": [True, False, None, "x\ny"], "s": '[],{}"\\'},
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_array_reader_matches_json_and_lines(tmp_path, chunk, indent):
    data = _samples(40)
    f = tmp_path / "a.json"
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    f.write_text(text, encoding="utf-8")
    recs = list(iter_samples(f, chunk=chunk))
    assert all(isinstance(r, Record) for r in recs)
    assert [r.value for r in recs] == data
    assert [r.index for r in recs] == list(range(1, 41))
    if indent:  # each element starts on the line after the previous one ends
        starts = [i + 1 for i, line in enumerate(text.splitlines()) if line == "  {"]
        assert [r.line for r in recs] == starts


@pytest.mark.parametrize("chunk", [3, 64, 1 << 20])
@pytest.mark.parametrize(
    "broken",
    [
        '[\n {"a": 1},\n {"a": 2 "b": 3}\n]',
        '[\n {"a": 1},\n {"a": "unterminated\n}\n]',
        '[{"a": 1}, {"a": tru}]',
        '[{"a": 1}, {"a": [1, 2}]',
    ],
)
def test_array_reader_error_position_matches_json(tmp_path, chunk, broken):
    f = tmp_path / "b.json"
    f.write_text(broken)
    with pytest.raises(json.JSONDecodeError) as err:
        json.loads(broken)
    issues = [r for r in iter_samples(f, chunk=chunk) if isinstance(r, ParseIssue)]
    assert len(issues) == 1 and issues[0].fatal
    assert (issues[0].line, issues[0].column) == (err.value.lineno, err.value.colno)
    assert err.value.msg in issues[0].message


def test_jsonl_reader_keeps_going_after_a_bad_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"a": 1}\n\n{"a": \n{"a": 3}\n')
    recs = list(iter_samples(f))
    assert [type(r) for r in recs] == [Record, ParseIssue, Record]
    assert [(r.index, r.line) for r in recs] == [(1, 1), (2, 3), (3, 4)]
    assert not recs[1].fatal


@pytest.mark.parametrize("chunk", [4, 1 << 20])
def test_array_reader_places_an_encoding_error_on_its_line(tmp_path, chunk):
    f = tmp_path / "d.json"
    f.write_bytes(b'[{"a": 1},\n{"a": "caf\xe9"}]')
    *records, issue = list(iter_samples(f, chunk=chunk))
    assert [r.value for r in records] == [{"a": 1}]
    assert isinstance(issue, ParseIssue) and issue.fatal and issue.line == 2
    assert "invalid UTF-8 (byte 21)" in issue.message
