"""Faults the dataset registry must survive: 20 registrations at once into one dataset_info.json, and a
registration killed mid-way. No entry lost, the file always valid JSON, the previous version kept."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from conftest import clean_env
from ftk.dataset.registry import KEEP_BACKUPS
from reliability_ledger import record
from rkit import FTK


def _data(root: Path, n: int) -> Path:
    path = root / f"set{n}.jsonl"
    path.write_text(json.dumps({"instruction": f"question {n}", "input": "", "output": f"answer {n}"}) + "\n")
    return path


def test_twenty_concurrent_registrations_lose_nothing(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir()
    other = {"file_name": "elsewhere.jsonl", "formatting": "alpaca"}
    (registry / "dataset_info.json").write_text(json.dumps({"other": other}))
    procs = [
        subprocess.Popen(
            [
                str(FTK),
                "dataset",
                "register",
                str(_data(tmp_path, n)),
                "--name",
                f"set{n}",
                "--dataset-dir",
                str(registry),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for n in range(20)
    ]
    results = [(p.wait(timeout=600), p.stderr.read() if p.stderr else "") for p in procs]
    info = json.loads((registry / "dataset_info.json").read_text())
    missing = sorted({f"set{n}" for n in range(20)} - set(info))
    backups = list(registry.glob("dataset_info.json.bak.*"))
    ok = all(code == 0 for code, _ in results) and not missing and backups
    record("fault", "20 concurrent dataset registrations", "recovered" if ok else "not_recovered", lost=len(missing))
    assert all(code == 0 for code, _ in results), [err for code, err in results if code]
    assert not missing, f"entries lost: {missing}"
    assert info["other"] == other, "an entry nobody registered was changed"
    assert 1 <= len(backups) <= KEEP_BACKUPS, backups
    assert all(isinstance(json.loads(b.read_text()), dict) for b in backups)
    assert not list(registry.glob(".dataset_info.json.*")), "a temporary file was left behind"


def test_registration_killed_midway_leaves_a_valid_registry(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    first = subprocess.run(
        [str(FTK), "dataset", "register", str(_data(tmp_path, 0)), "--name", "set0", "--dataset-dir", str(registry)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    before = (registry / "dataset_info.json").read_bytes()
    big = tmp_path / "big.jsonl"
    line = json.dumps({"instruction": "q", "input": "", "output": "a"})
    big.write_text("".join(line.replace('"q"', f'"q{i}"') + "\n" for i in range(400_000)))
    proc = subprocess.Popen(
        [str(FTK), "dataset", "register", str(big), "--name", "big", "--dataset-dir", str(registry)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    time.sleep(2.5)  # inside validation of the big file
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    after = (registry / "dataset_info.json").read_bytes()
    intact = json.loads(after) == json.loads(before) or "big" in json.loads(after)
    record("fault", "registration killed mid-way", "recovered" if intact else "not_recovered")
    assert intact
    leftovers = [p.name for p in registry.iterdir() if p.name.endswith((".tmp", ".partial"))]
    assert not leftovers, leftovers
