"""The train preflight refuses each bad input with a message naming the file or key, and writes nothing.

`ftk run train --preflight-only` (the train stage's doctor checks: model folder, GPUs, disk; then data sets,
template, run folder) and scripts/train.sh, which execs it. Nothing here trains: failures stop before
LLaMA-Factory starts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import HOME, clean_env, run_ftk

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder with the identity set registered the way users do it (ftk dataset register)."""
    d = tmp_path / "data"
    d.mkdir()
    r = run_ftk(
        "dataset",
        "register",
        str(HOME / "data" / "identity.json"),
        "--name",
        "identity",
        "--dataset-dir",
        str(d),
        env=clean_env(),
    )
    assert r.returncode == 0, r.stderr
    return d


def _env(tmp_path: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        RUNS_DIR=str(tmp_path / "runs"),
        DATASET_DIR=str(data_dir),
        MEDIA_ROOT=str(data_dir),
        RUN_ID="t1",
        **extra,
    )


def _preflight(tmp_path: Path, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_ftk("run", "train", "--preflight-only", *args, env=_env(tmp_path, data_dir, **env))


def _fake_model(root: Path, config: dict, weights: bool = True, tokenizer: bool = True) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config))
    if weights:  # an empty but whole safetensors file: an 8-byte header length, then the header `{}`
        (root / "model.safetensors").write_bytes((2).to_bytes(8, "little") + b"{}")
    if tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json"):  # the second holds the chat template
            shutil.copy(MODEL / name, root / name)
    return root


def test_passing_preflight_writes_the_config(tmp_path: Path, data_dir: Path) -> None:
    if not MODEL.is_dir():
        pytest.fail(f"{MODEL} is missing: run `make setup`")
    r = _preflight(tmp_path, data_dir)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load((tmp_path / "runs" / "t1" / "train.yaml").read_text())
    assert cfg["dataset"] == "identity" and "resume_from_checkpoint" not in cfg
    assert "ok template" in r.stderr and "smollm2 (text) fits LlamaForCausalLM" in r.stderr


def test_missing_model_folder(tmp_path: Path, data_dir: Path) -> None:
    r = _preflight(tmp_path, data_dir, MODEL_ID=str(tmp_path / "nowhere"))
    assert r.returncode == 1
    assert f"model folder {tmp_path / 'nowhere'} does not exist" in r.stderr
    assert not (tmp_path / "runs" / "t1" / "train.yaml").exists()


def test_incomplete_model_folder(tmp_path: Path, data_dir: Path) -> None:
    model = _fake_model(tmp_path / "m", {"architectures": ["LlamaForCausalLM"]}, weights=False)
    r = _preflight(tmp_path, data_dir, MODEL_ID=str(model))
    assert r.returncode == 1 and f"model folder {model}: weights: no weights" in r.stderr
    (model / "config.json").unlink()
    r = _preflight(tmp_path, data_dir, MODEL_ID=str(model))
    assert r.returncode == 1 and f"model folder {model}: config: no config.json" in r.stderr


def test_missing_weight_shard(tmp_path: Path, data_dir: Path) -> None:
    model = _fake_model(tmp_path / "m", {"architectures": ["LlamaForCausalLM"]})
    (model / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00002.safetensors"}}))
    r = _preflight(tmp_path, data_dir, MODEL_ID=str(model))
    assert r.returncode == 1 and "lists 1 shards, missing: model-00002.safetensors" in r.stderr


def test_unregistered_data_set(tmp_path: Path, data_dir: Path) -> None:
    r = _preflight(tmp_path, data_dir, DATASETS="identty")
    assert r.returncode == 1
    assert f"data set 'identty' is not registered in {data_dir / 'dataset_info.json'}" in r.stderr
    assert "did you mean 'identity'?" in r.stderr


def test_invalid_data_set(tmp_path: Path, data_dir: Path) -> None:
    bad = data_dir / "broken.json"
    bad.write_text('[{"instruction": "hi", "output": 3}]')
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["broken"] = {"file_name": "broken.json", "formatting": "alpaca"}
    (data_dir / "dataset_info.json").write_text(json.dumps(info))
    r = _preflight(tmp_path, data_dir, DATASETS="identity,broken")
    assert r.returncode == 1
    assert f"data set 'broken' ({bad}) is not valid" in r.stderr and "output" in r.stderr
    assert not (tmp_path / "runs" / "t1" / "train.yaml").exists()


def test_vision_template_on_a_text_model(tmp_path: Path, data_dir: Path) -> None:
    r = _preflight(tmp_path, data_dir, TEMPLATE="qwen2_vl")
    assert r.returncode == 1
    assert "TEMPLATE (from .env or the environment" in r.stderr
    assert "template 'qwen2_vl' is for vision-language models but" in r.stderr
    assert "describes a text model (LlamaForCausalLM" in r.stderr


def test_text_template_on_a_vision_model(tmp_path: Path, data_dir: Path) -> None:
    model = _fake_model(
        tmp_path / "vl",
        {
            "architectures": ["Qwen3VLForConditionalGeneration"],
            "vision_config": {"patch_size": 16},
        },
    )
    (model / "preprocessor_config.json").write_text('{"patch_size": 16}')
    r = _preflight(tmp_path, data_dir, MODEL_ID=str(model))
    assert r.returncode == 1
    assert "template 'smollm2' is text-only but" in r.stderr and "vision-language model" in r.stderr


def test_completed_adapter_is_not_overwritten(tmp_path: Path, data_dir: Path) -> None:
    adapter = tmp_path / "runs" / "t1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"old")
    r = _preflight(tmp_path, data_dir)
    assert r.returncode == 1
    assert f"{adapter} already holds a completed adapter (RUN_ID=t1); use a new RUN_ID or pass --overwrite" in r.stderr
    assert (adapter / "adapter_model.safetensors").read_bytes() == b"old"
    r = _preflight(tmp_path, data_dir, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "runs" / "t1" / "adapter.prev" / "adapter_model.safetensors").read_bytes() == b"old"
    assert not adapter.exists()


def test_interrupted_run_resumes_from_the_last_checkpoint(tmp_path: Path, data_dir: Path) -> None:
    adapter = tmp_path / "runs" / "t1" / "adapter"
    for step in (2, 10, 4):
        (adapter / f"checkpoint-{step}").mkdir(parents=True)
        (adapter / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    r = _preflight(tmp_path, data_dir)
    assert r.returncode == 0, r.stderr
    assert f"resuming the interrupted run from {adapter / 'checkpoint-10'}" in r.stderr
    cfg = yaml.safe_load((tmp_path / "runs" / "t1" / "train.yaml").read_text())
    assert cfg["resume_from_checkpoint"] == str(adapter / "checkpoint-10")


def _train_sh(tmp_path: Path, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOME / "scripts" / "train.sh"), "--preflight-only"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, data_dir, **env),
        timeout=300,
        check=False,
    )


def test_disk_too_small(tmp_path: Path, data_dir: Path) -> None:
    r = _train_sh(tmp_path, data_dir, TRAIN_MIN_FREE_MB="999999999")
    assert r.returncode == 1
    assert "need 999999999 MiB" in r.stderr and str(tmp_path / "runs") in r.stderr
    assert not (tmp_path / "runs" / "t1").exists()


def test_too_few_gpus(tmp_path: Path, data_dir: Path) -> None:
    r = _train_sh(tmp_path, data_dir, TRAIN_GPUS="2", ALLOW_CPU="false", CUDA_VISIBLE_DEVICES="")
    assert r.returncode == 1
    assert "training (TRAIN_GPUS) needs 2 GPU(s) but 0 visible" in r.stderr
