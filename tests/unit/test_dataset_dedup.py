"""Exact duplicates in flat memory: with the in-memory part forced tiny, the spilled part finds the same
duplicates (same first sample, same line) as a plain dict does, and the CLI prints them in file order."""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path

from conftest import clean_env, run_ftk
from ftk.dataset.dedup import SpillingDuplicateIndex, fingerprint
from ftk.dataset.problems import Problem, ProblemSink


def _reference(keys: list[int]) -> list[tuple[int, int, int]]:
    first: dict[int, int] = {}
    out = []
    for n, key in enumerate(keys, start=1):
        earlier = first.setdefault(key, n)
        if earlier != n:
            out.append((n + 100, n, earlier))  # line = sample + 100
    return out


def test_spilled_duplicates_match_a_plain_dict(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rng = random.Random(7)
    pool = [rng.getrandbits(64) | 1 for _ in range(400)]
    # copies inside the memory part, across memory/spill, inside the spill, and triple copies
    keys = [rng.choice(pool) for _ in range(1500)]
    found = []
    with SpillingDuplicateIndex(memory_samples=50) as index:
        for n, key in enumerate(keys, start=1):
            earlier = index.add(key, n, n + 100)
            if earlier is not None:
                found.append((n + 100, n, earlier))
        assert index.spilled > 0 and index.memory.count == 50
        found += list(index.spilled_duplicates())
        assert list(tmp_path.glob("ftk-dedup-*"))  # the partitions are on disk while open
    assert sorted(found) == _reference(keys)
    assert not list(tmp_path.glob("ftk-dedup-*"))  # and gone afterwards


def test_oversized_partitions_are_split_and_still_exact(tmp_path: Path, monkeypatch) -> None:
    """More spilled samples than one partition may hold in memory: split by the next key bits, same answer."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(SpillingDuplicateIndex, "RESOLVE_SAMPLES", 8)
    rng = random.Random(11)
    pool = [rng.getrandbits(64) | 1 for _ in range(3000)]
    keys = [rng.choice(pool) for _ in range(6000)]
    with SpillingDuplicateIndex(memory_samples=10) as index:
        found = [(n + 100, n, e) for n, k in enumerate(keys, start=1) if (e := index.add(k, n, n + 100)) is not None]
        found += list(index.spilled_duplicates())
    assert sorted(found) == _reference(keys)


def test_partitions_are_removed_after_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    try:
        with SpillingDuplicateIndex(memory_samples=1) as index:
            for n in range(1, 10):
                index.add(n << 40, n, n)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert not list(tmp_path.glob("ftk-dedup-*"))


def test_sink_keeps_the_earliest_problems_whatever_order_they_arrive_in() -> None:
    sink = ProblemSink(keep=3)
    for line in (50, 10, 40, 20, 30):
        sink.add(Problem("b.jsonl", line, line, "sample", "duplicate", "m", "f"))
    sink.add(Problem("c.jsonl", 1, 1, "sample", "json", "m", "f"))
    assert [p.line for p in sink.kept] == [10, 20, 30]
    assert sink.total == 6 and sink.by_kind["duplicate"] == 5


def test_cli_reports_spilled_duplicates_in_file_order(tmp_path: Path) -> None:
    """80k samples: more than the in-memory part holds, with copies late in the file of early samples."""
    data = tmp_path / "big.jsonl"
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(80_000)]
    rows[70_000] = rows[5]  # first sample in memory
    rows[79_000] = rows[75_000]  # both spilled
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = clean_env(TMPDIR=str(tmp))
    argv = ["dataset", "validate", str(data), "--media-root", str(tmp_path), "--json", "--strict"]
    r = run_ftk(*argv, env=env, timeout=600)
    assert r.returncode == 1, r.stderr  # duplicates are warnings; --strict makes them errors
    report = json.loads(r.stdout)
    dups = [p for p in report["problems"] if p["kind"] == "duplicate"]
    assert [(p["line"], p["message"]) for p in dups] == [
        (70_001, "same content as sample 6"),
        (79_001, "same content as sample 75001"),
    ]
    assert fingerprint(rows[5]) == fingerprint(dict(reversed(list(rows[5].items()))))  # key order ignored
    assert os.listdir(tmp) == []  # the spilled partitions were removed
