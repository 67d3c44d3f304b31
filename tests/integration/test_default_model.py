"""The embedded default model as users get it from `make setup`: loads, chats, splits digits, is reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    if not (MODEL / "ftk-manifest.json").is_file():
        pytest.fail(f"{MODEL} is missing: run `make setup` (it runs `ftk model default`)")
    return MODEL


def test_folder_is_a_complete_hf_model(model_dir: Path) -> None:
    names = {p.name for p in model_dir.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "ftk-manifest.json",
    } <= names
    assert "chat_template.jinja" not in names  # inline, so transformers 4.x sees it
    config = json.loads((model_dir / "config.json").read_text())
    assert config["rope_theta"] == 100000.0 and config["torch_dtype"] == "float32"
    assert "quantization_config" not in config
    tok_cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "<|im_start|>" in tok_cfg["chat_template"]
    gen = json.loads((model_dir / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2


def test_tokenizer_splits_digits_and_stops_at_im_end(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    assert tok.tokenize("in 2024") == ["in", "Ġ", "2", "0", "2", "4"]
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_greedy_chat_answer_names_paris(model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.dtype == torch.float32
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_rerun_is_a_quiet_no_op(model_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    result = run_ftk("model", "default", "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before
    status = run_ftk("model", "status")
    assert status.returncode == 0 and "matches its manifest" in status.stdout


def test_build_is_deterministic_and_repairs_tampering(tmp_path: Path, model_dir: Path) -> None:
    """A fresh build (another process, another day) gives the bytes of the installed one; a changed file is
    noticed, named and rebuilt."""
    expected = json.loads((model_dir / "ftk-manifest.json").read_text())["files"]
    a = tmp_path / "a"
    for models_dir in (a,):
        result = run_ftk("model", "default", env=clean_env(MODELS_DIR=str(models_dir)), timeout=600)
        assert result.returncode == 0, result.stderr
        built = json.loads((models_dir / "SmolLM2-135M-Instruct" / "ftk-manifest.json").read_text())
        assert built["files"] == expected

    target = a / "SmolLM2-135M-Instruct"
    with (target / "tokenizer_config.json").open("r+b") as f:  # same size, different bytes
        first = f.read(1)
        f.seek(0)
        f.write(b" " if first != b" " else b"\n")
    status = run_ftk("model", "status", env=clean_env(MODELS_DIR=str(a)))
    assert status.returncode == 1 and "tokenizer_config.json: sha256 differs" in status.stdout
    result = run_ftk("model", "default", "--quiet", env=clean_env(MODELS_DIR=str(a)), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "did not match its manifest and was rebuilt" in result.stderr
    assert "tokenizer_config.json" in result.stderr
    assert json.loads((target / "ftk-manifest.json").read_text())["files"] == expected
    assert not [
        p.name for p in a.iterdir() if p.name.startswith(".SmolLM2-135M-Instruct.") and not p.name.endswith(".lock")
    ]  # no temp or old folders left behind
