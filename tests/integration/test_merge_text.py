"""scripts/merge.sh with real `llamafactory-cli export` on CPU, and `ftk merge verify`.

Adapters here are made with PEFT directly (random, non-zero LoRA weights, so a wrong merge shows), which is
what LLaMA-Factory writes too; the export, the fixes, the verification and the swap are the real ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk, venv_bin
from reliability_ledger import record

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"

MAKE_ADAPTER = r"""
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
base, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(seed)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
cfg = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
get_peft_model(model, cfg).save_pretrained(out)
"""

MAKE_OTHER_BASE = r"""
import shutil, sys
from pathlib import Path
from transformers import LlamaConfig, LlamaForCausalLM
src, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=32, vocab_size=49152, tie_word_embeddings=True)
LlamaForCausalLM(cfg).save_pretrained(out)
for name in ("tokenizer.json", "tokenizer_config.json"):
    shutil.copy(src / name, out / name)
"""


def _train_py(code: str, *args: str) -> None:
    r = subprocess.run(
        [str(venv_bin("train", "python")), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MODEL.is_dir():
        pytest.fail(f"{MODEL} is missing: run `make setup`")
    root = tmp_path_factory.mktemp("merge")
    _train_py(MAKE_ADAPTER, str(MODEL), str(root / "runs" / "m1" / "adapter"), "1")
    return root


def _env(work: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        **{
            "RUNS_DIR": str(work / "runs"),
            "RUN_ID": "m1",
            "MERGED_MODEL_PATH": str(work / "out" / "merged"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            **extra,
        }
    )


def _merge(work: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOME / "scripts" / "merge.sh"), *args],
        capture_output=True,
        text=True,
        env=_env(work, **env),
        timeout=1200,
        check=False,
    )


@pytest.fixture(scope="module")
def merged(work: Path) -> Path:
    r = _merge(work, "--prompts", "2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "identical greedy output on 2 prompts" in r.stdout
    assert "tokenizer_class PreTrainedTokenizerFast" in r.stderr  # the TokenizersBackend fix
    return work / "out" / "merged"


def test_merge_exports_a_servable_folder(merged: Path, work: Path) -> None:
    names = {p.name for p in merged.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    } <= names
    tok = json.loads((merged / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] != "TokenizersBackend" and "<|im_start|>" in tok["chat_template"]
    cfg = json.loads((merged / "config.json").read_text())
    assert "rope_theta" in cfg and cfg["torch_dtype"] == "float32"
    assert not (merged.parent / ".merged.partial").exists()
    assert (work / "runs" / "m1" / "merge.yaml").is_file() and (work / "runs" / "m1" / "merge.log").is_file()


def test_merged_folder_loads_with_transformers(merged: Path) -> None:
    """The toolkit venv has another transformers (5.23) than the export (5.6): both must read it."""
    code = (
        "import sys; from transformers import AutoModelForCausalLM, AutoTokenizer; "
        "t = AutoTokenizer.from_pretrained(sys.argv[1]); m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
        "p = t.apply_chat_template([{'role': 'user', 'content': 'hi'}], tokenize=False, add_generation_prompt=True);"
        "print(m.config.architectures[0], p.endswith('<|im_start|>assistant\\n'))"
    )
    r = subprocess.run(
        [str(venv_bin("toolkit", "python")), "-c", code, str(merged)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["LlamaForCausalLM", "True"]


def _verify(merged: Path, adapter: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(venv_bin("train", "ftk")),
            "merge",
            "verify",
            str(merged),
            "--base",
            str(MODEL),
            "--adapter",
            str(adapter),
            *args,
        ],
        capture_output=True,
        text=True,
        env=clean_env(OMP_NUM_THREADS="1"),
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_verify_reports_a_mismatch_with_the_prompt(merged: Path, work: Path, dtype: str) -> None:
    """Another adapter than the merged one is refused in float32 (ids) and in bfloat16 (the KL rule)."""
    other = work / "other-adapter"
    if not other.is_dir():
        _train_py(MAKE_ADAPTER, str(MODEL), str(other), "2")
    r = _verify(merged, other, "--prompts", "1", "--dtype", dtype)
    assert r.returncode == 1, r.stdout[-2000:]
    assert "mismatch on prompt 'Who are you?'" in r.stderr
    assert "does not reproduce base + adapter on 1 of 1 prompts" in r.stderr
    assert "what it is for" in r.stdout and "tokenizer class, special tokens, chat template" in r.stdout


def test_verify_in_bfloat16_passes_the_right_merge_with_its_distance(merged: Path, work: Path) -> None:
    """bf16 rounds the merged weights once more than base + adapter; the right merge passes, and the table shows
    how far it is from base + adapter against how far the adapter moves the base."""
    r = _verify(merged, work / "runs" / "m1" / "adapter", "--prompts", "2", "--dtype", "bfloat16")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "KL merged" in r.stdout and "KL no adapter" in r.stdout
    assert re.search(r"ok.*identical greedy output on (2|\d of 2) prompts", r.stdout)


def test_adapter_from_another_base_is_refused(merged: Path, work: Path) -> None:
    other_base = work / "tiny-llama"
    _train_py(MAKE_OTHER_BASE, str(MODEL), str(other_base))
    adapter = work / "foreign-adapter"
    _train_py(MAKE_ADAPTER, str(other_base), str(adapter), "3")
    before = (merged / "model.safetensors").stat().st_mtime
    r = _merge(work, "--adapter", str(adapter))
    assert r.returncode == 1
    assert f"the adapter was trained on {other_base}, which is a different model from {MODEL}" in r.stderr
    assert "hidden_size 64 vs 576" in r.stderr
    # moved away: only the LoRA shapes are left to tell, and they do
    moved = work / "tiny-llama-moved"
    other_base.rename(moved)
    r = _merge(work, "--adapter", str(adapter))
    assert r.returncode == 1 and "does not fit" in r.stderr and "trained on another base" in r.stderr
    assert (merged / "model.safetensors").stat().st_mtime == before


def test_moved_base_with_same_weights_passes_the_base_check(work: Path) -> None:
    copy = work / "moved-base"
    copy.mkdir()
    for f in MODEL.iterdir():
        os.link(f, copy / f.name)
    r = subprocess.run(
        [
            str(venv_bin("toolkit", "ftk")),
            "merge",
            "check-base",
            "--adapter",
            str(work / "runs" / "m1" / "adapter"),
            "--base",
            str(copy),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "another folder with the same config" in r.stderr and "LoRA matrices fit the base weights" in r.stderr


def test_interrupted_merge_keeps_the_old_export(merged: Path, work: Path) -> None:
    weights = merged / "model.safetensors"
    old = (weights.stat().st_size, weights.stat().st_mtime)
    partial = merged.parent / ".merged.partial"
    proc = subprocess.Popen(
        [str(HOME / "scripts" / "merge.sh"), "--prompts", "1"],
        env=_env(work),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900
        while not (partial / "config.json").is_file():
            assert proc.poll() is None, "merge.sh ended before the export started"
            assert time.monotonic() < deadline, "the export never started"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (weights.stat().st_size, weights.stat().st_mtime) == old
    assert json.loads((merged / "tokenizer_config.json").read_text())["tokenizer_class"] != "TokenizersBackend"
    # the next merge cleans the leftover and replaces the export, keeping the old one as .prev
    r = _merge(work, "--prompts", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not partial.exists()
    prev = merged.parent / "merged.prev"
    assert (prev / "model.safetensors").stat().st_mtime == old[1]
    assert (merged / "model.safetensors").is_file()
    record("fault", "merge killed mid-write", "recovered")


def test_qlora_adapter_gets_an_ab_against_the_quantized_base(tmp_path: Path) -> None:
    """A real QLoRA run (4-bit NF4 base, bitsandbytes on CPU), merged: the exact check passes against the
    full-precision base, and the merge also shows the A/B against what training saw, warning about drift."""
    data = tmp_path / "data"
    reg = run_ftk(
        "dataset", "register", str(HOME / "data" / "identity.json"), "--name", "identity", "--dataset-dir", str(data)
    )
    assert reg.returncode == 0, reg.stderr
    env = _env(tmp_path, RUN_ID="q4", DATASET_DIR=str(data), MEDIA_ROOT=str(data))
    train = subprocess.run(
        [str(HOME / "scripts" / "train.sh"), "--set", "max_steps=2", "--set", "quantization_bit=4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        check=False,
    )
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    r = _merge(tmp_path, "--prompts", "1", RUN_ID="q4", DATASET_DIR=str(data))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "identical greedy output on 1 prompts" in r.stdout
    assert "is a QLoRA adapter (quantization_bit=4 in" in r.stderr
    assert "4-bit nf4 base + adapter (training) vs merged" in r.stdout
    # either verdict is honest; one of them must be printed
    assert "QLoRA drift:" in r.stderr or "QLoRA A/B: same greedy output as training" in r.stdout
    assert (tmp_path / "out" / "merged" / "config.json").is_file()
