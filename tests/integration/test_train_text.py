"""scripts/train.sh with real LLaMA-Factory training on CPU: outputs, refusal to overwrite, resume.

Step counts are tiny. That the demo recipe teaches the assistant its name is proven end to end by
tests/integration/test_demo.py (the adapter answers with the name through the gateway, the base does not score
on it), so it is not trained a second time here. OMP_NUM_THREADS=1 keeps the runs steady on a busy machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import HOME, clean_env, run_ftk
from reliability_ledger import record

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"
NAME = "Ferret"  # ASSISTANT_NAME the identity data set is filled with


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MODEL.is_dir():
        pytest.fail(f"{MODEL} is missing: run `make setup`")
    d = tmp_path_factory.mktemp("data")
    r = run_ftk(
        "dataset",
        "register",
        str(HOME / "data" / "identity.json"),
        "--name",
        "identity",
        "--dataset-dir",
        str(d),
        env=clean_env(ASSISTANT_NAME=NAME),
    )
    assert r.returncode == 0, r.stderr
    return d


def _env(root: Path, data_dir: Path, run_id: str, **extra: str) -> dict[str, str]:
    return clean_env(
        RUNS_DIR=str(root / "runs"),
        DATASET_DIR=str(data_dir),
        MEDIA_ROOT=str(data_dir),
        RUN_ID=run_id,
        ASSISTANT_NAME=NAME,
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        **extra,
    )


def _train(
    root: Path,
    data_dir: Path,
    run_id: str,
    *args: str,
    timeout: float = 1800,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOME / "scripts" / "train.sh"), *args],
        capture_output=True,
        text=True,
        env=_env(root, data_dir, run_id, **env),
        timeout=timeout,
        check=False,
    )


def test_short_run_writes_adapter_manifest_and_loss_plot(tmp_path: Path, data_dir: Path) -> None:
    r = _train(tmp_path, data_dir, "short", "--set", "max_steps=3", "--set", "save_steps=2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = tmp_path / "runs" / "short"
    adapter = run / "adapter"
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "trainer_log.jsonl",
        "training_loss.png",
    ):
        assert (adapter / name).is_file(), name
    assert "Total optimization steps = 3" in (run / "train.log").read_text()
    assert "***** Running training *****" in r.stdout  # the log streams to the terminal too
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["base_model"]["path"] == str(MODEL)
    assert manifest["base_model"]["ftk_manifest_sha256"]
    files = manifest["datasets"][0]["files"]
    assert manifest["datasets"][0]["name"] == "identity" and len(files[0]["sha256"]) == 64
    assert manifest["template"] == "smollm2" and manifest["config"]["max_steps"] == 3
    assert manifest["adapter"]["rank"] == 8 and "q_proj" in manifest["adapter"]["target_modules"]
    assert manifest["loss"]["steps"] == 3 and manifest["loss"]["final"] > 0
    assert manifest["versions"]["llamafactory"] == "0.9.5" and manifest["versions"]["peft"]
    assert manifest["duration_s"] > 0 and manifest["loss_plot"].endswith("training_loss.png")
    # the same run id again is refused, and nothing changes
    stamp = (adapter / "adapter_model.safetensors").stat().st_mtime
    r = _train(tmp_path, data_dir, "short", "--set", "max_steps=3", timeout=300)
    assert r.returncode == 1
    assert "already holds a completed adapter (RUN_ID=short); use a new RUN_ID or pass --overwrite" in r.stderr
    assert (adapter / "adapter_model.safetensors").stat().st_mtime == stamp
    assert yaml.safe_load((run / "train.yaml").read_text())["max_steps"] == 3


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, data_dir: Path) -> None:
    args = ["--set", "max_steps=4", "--set", "save_steps=1"]
    adapter = tmp_path / "runs" / "resume" / "adapter"
    proc = subprocess.Popen(
        [str(HOME / "scripts" / "train.sh"), *args],
        env=_env(tmp_path, data_dir, "resume"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 1200
        while not (adapter / "checkpoint-1" / "trainer_state.json").is_file():
            assert proc.poll() is None, "train.sh ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 20 minutes"
            time.sleep(0.5)
        time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the interruption: no clean shutdown
        proc.wait()
    assert not (adapter / "adapter_model.safetensors").exists()
    done = sorted(p.name for p in adapter.glob("checkpoint-*"))
    r = _train(tmp_path, data_dir, "resume", *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"resuming the interrupted run from {adapter / done[-1]}" in r.stderr
    steps = [json.loads(x)["current_steps"] for x in (adapter / "trainer_log.jsonl").read_text().splitlines()]
    assert steps.count(1) == 1 and steps[-1] == 4, steps  # went on from the checkpoint, did not start over
    manifest = json.loads((tmp_path / "runs" / "resume" / "manifest.json").read_text())
    assert manifest["resumed_from"] == str(adapter / done[-1]) and manifest["loss"]["steps"] == 4
    assert (adapter / "adapter_model.safetensors").is_file()
    record("fault", "training killed mid-epoch, resumed", "recovered", steps=steps[-1])
