"""Training on several processes and "nodes" through LLaMA-Factory's own launcher (FORCE_TORCHRUN, NNODES,
NODE_RANK, MASTER_ADDR, MASTER_PORT, NPROC_PER_NODE, set by `ftk run train`), for real on CPU (gloo):

- 2 processes on one host: it finishes, the adapter is saved once, and the loss per step matches a single process
  with the same global batch (4 = 2 x 2 processes = 2 x 2 accumulation steps); killed mid-way, a 2-process resume
  is refused before torchrun (transformers restores the optimizer onto 'cpu:N', which torch cannot load on CPU)
  with the way that works, and one process with twice the accumulation resumes it to the end;
- 2 nodes of 1 process each on 127.0.0.1 sharing RUNS_DIR: node 0 alone writes the adapter and the manifest;
- a node whose rendered recipe differs from node 0's stops before torchrun, naming itself.

Tiny steps, OMP_NUM_THREADS=1 (the machine is shared): the loss tolerance is relative, LOSS_RTOL per step (the
reductions run in another order across processes, and per-device token averages differ from accumulated ones).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk
from stack import free_port

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"
LOSS_RTOL = 0.02
STEPS = ["--set", "max_steps=3", "--set", "save_steps=1", "--set", "cutoff_len=64", "--set", "warmup_ratio=0"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MODEL.is_dir():
        pytest.fail(f"{MODEL} is missing: run `make setup`")
    d = tmp_path_factory.mktemp("data")
    args = ["dataset", "register", str(HOME / "data" / "identity.json"), "--name", "identity"]
    r = run_ftk(*args, "--dataset-dir", str(d), env=clean_env(ASSISTANT_NAME="Ferret"))
    assert r.returncode == 0, r.stderr
    return d


def env(root: Path, data_dir: Path, run_id: str, **extra: str) -> dict[str, str]:
    return clean_env(
        RUNS_DIR=str(root / "runs"),
        DATASET_DIR=str(data_dir),
        MEDIA_ROOT=str(data_dir),
        RUN_ID=run_id,
        ASSISTANT_NAME="Ferret",
        OMP_NUM_THREADS="1",
        **extra,
    )


def start(root: Path, data_dir: Path, run_id: str, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(HOME / "scripts" / "train.sh"), *STEPS, *args],
        env=env(root, data_dir, run_id, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


def losses(run: Path) -> dict[int, float]:
    """Loss per step from trainer_log.jsonl (the last entry of a step: a resumed run logs it again)."""
    rows = [json.loads(x) for x in (run / "adapter" / "trainer_log.jsonl").read_text().splitlines()]
    return {r["current_steps"]: r["loss"] for r in rows if "loss" in r}


def assert_same_curve(got: dict[int, float], want: dict[int, float]) -> None:
    assert sorted(got) == sorted(want) == [1, 2, 3], (got, want)
    for step, loss in want.items():
        assert abs(got[step] - loss) <= LOSS_RTOL * loss, f"step {step}: {got[step]} vs single process {loss}"


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[int, float]:
    root = tmp_path_factory.mktemp("single")
    proc = start(
        root, data_dir, "one", "--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=2"
    )
    finish(proc)
    return losses(root / "runs" / "one")


def test_two_processes_match_one_process_and_save_the_adapter_once(
    tmp_path: Path, data_dir: Path, single: dict[int, float]
) -> None:
    args = ["--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=1"]
    extra = {"FORCE_TORCHRUN": "true", "NPROC_PER_NODE": "2", "MASTER_PORT": str(free_port())}
    run = tmp_path / "runs" / "two"
    out = finish(start(tmp_path, data_dir, "two", *args, **extra))
    assert "Process rank: 1, world size: 2" in out
    saved = [p.parent.name for p in run.rglob("adapter_model.safetensors") if "checkpoint" not in p.parent.name]
    assert saved == ["adapter"]  # once, by rank 0
    assert_same_curve(losses(run), single)


def test_two_processes_killed_midway_resume_with_one_process(tmp_path: Path, data_dir: Path) -> None:
    args = ["--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=1"]
    extra = {"FORCE_TORCHRUN": "true", "NPROC_PER_NODE": "2", "MASTER_PORT": str(free_port())}
    run = tmp_path / "runs" / "two"
    proc = start(tmp_path, data_dir, "two", *args, **extra)
    try:
        deadline = time.monotonic() + 600
        while not (run / "adapter" / "checkpoint-1" / "trainer_state.json").is_file():
            assert proc.poll() is None, (proc.stdout.read() if proc.stdout else "")[-4000:]
            assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
            time.sleep(0.5)
        time.sleep(1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole torchrun group, no clean shutdown
        proc.wait()
    assert not (run / "adapter" / "adapter_model.safetensors").exists()
    # 2 processes on CPU cannot resume (transformers restores the optimizer onto 'cpu:N'): refused before torchrun
    refused = start(tmp_path, data_dir, "two", *args, **{**extra, "MASTER_PORT": str(free_port())})
    out, _ = refused.communicate(timeout=300)
    assert refused.returncode != 0 and "NPROC_PER_NODE=1" in out and "--overwrite" in out, out[-3000:]
    assert "training: llamafactory-cli" not in out, out[-3000:]
    # one process with twice the accumulation (the same global batch of 4) resumes it to the end
    one = ["--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=2"]
    out = finish(start(tmp_path, data_dir, "two", *one))
    assert "resuming the interrupted run from" in out and "checkpoint-" in out
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["resumed_from"] and manifest["loss"]["steps"] == 3


def test_two_nodes_on_one_host_save_the_adapter_once(tmp_path: Path, data_dir: Path, single: dict[int, float]) -> None:
    args = ["--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=1"]
    port = str(free_port())
    nodes = {"NNODES": "2", "NPROC_PER_NODE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
    first = start(tmp_path, data_dir, "nodes", *args, NODE_RANK="0", **nodes)
    second = start(tmp_path, data_dir, "nodes", *args, NODE_RANK="1", **nodes)
    out0, out1 = finish(first), finish(second)
    run = tmp_path / "runs" / "nodes"
    assert "node 1: recipe and 1 data files match node 0" in out1
    assert "node 1 done; node 0 saves the adapter" in out1 and "manifest" in out0
    assert (run / "adapter" / "adapter_model.safetensors").is_file() and (run / "manifest.json").is_file()
    assert not list(run.glob("adapter.prev*")) and (run / "train.node1.yaml").is_file()
    assert json.loads((run / "manifest.json").read_text())["loss"]["steps"] == 3
    assert_same_curve(losses(run), single)


def test_a_node_with_another_recipe_stops_naming_itself(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    nodes = {"NNODES": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_SYNC_TIMEOUT": "5"}
    r0 = start(tmp_path, data_dir, "mismatch", "--preflight-only", NODE_RANK="0", **nodes)
    finish(r0)
    with socket.create_server(("127.0.0.1", port)):  # node 0's rendezvous, listening
        r1 = start(
            tmp_path, data_dir, "mismatch", "--preflight-only", "--set", "learning_rate=0.5", NODE_RANK="1", **nodes
        )
        out, _ = r1.communicate(timeout=300)
    assert r1.returncode != 0
    assert "node 1 (" in out and "differs from node 0" in out and "the rendered recipe" in out, out[-3000:]
    assert not (tmp_path / "runs" / "mismatch" / "train.node1.yaml").exists()
