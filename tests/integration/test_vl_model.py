"""`ftk tiny-vl build`: tiny random Qwen-VL folders that LLaMA-Factory and vLLM take like the real models."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk, venv_bin

TINY = HOME / "models" / "tiny-qwen3vl"
VLLM_CPU_HEAD_SIZES = {32, 64, 80, 96, 112, 128, 160, 192, 224, 256}


@pytest.fixture(scope="module")
def tiny() -> Path:
    if not (TINY / "ftk-manifest.json").is_file():
        pytest.fail(f"{TINY} is missing: run `make setup` (scripts/setup.sh tiny-vl)")
    return TINY


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "ftk-manifest.json").read_text())


def _image_prompt(model: Path, template: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [
            str(venv_bin("train", "python")),
            "-m",
            "ftk.vl.image_prompt",
            str(model),
            template,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HOME,
        env=clean_env(),
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    return proc.returncode, json.loads(lines[-1])


def test_folder_is_a_complete_small_qwen3_vl(tiny: Path) -> None:
    names = {p.name for p in tiny.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "processor_config.json",
        "generation_config.json",
        "chat_template.jinja",
    } <= names
    assert (tiny / "model.safetensors").stat().st_size < 5 * 1024 * 1024
    config = json.loads((tiny / "config.json").read_text())
    assert config["model_type"] == "qwen3_vl" and config["architectures"] == ["Qwen3VLForConditionalGeneration"]
    text = config["text_config"]
    assert text["head_dim"] in VLLM_CPU_HEAD_SIZES
    # The vision token ids in config.json are the tokenizer's own ids for those tokens.
    added = {t["content"]: t["id"] for t in json.loads((tiny / "tokenizer.json").read_text())["added_tokens"]}
    assert config["image_token_id"] == added["<|image_pad|>"]
    assert config["video_token_id"] == added["<|video_pad|>"]
    assert config["vision_start_token_id"] == added["<|vision_start|>"]
    assert text["eos_token_id"] == added["<|im_end|>"] and text["vocab_size"] >= len(added)
    tok_cfg = json.loads((tiny / "tokenizer_config.json").read_text())
    assert tok_cfg["eos_token"] == "<|im_end|>"
    assert tok_cfg["chat_template"] == (tiny / "chat_template.jinja").read_text()  # inline for older readers
    pre = json.loads((tiny / "preprocessor_config.json").read_text())
    assert (pre["patch_size"], pre["merge_size"], pre["temporal_patch_size"]) == (
        16,
        2,
        2,
    )
    assert _manifest(tiny)["llamafactory_template"] == "qwen3_vl_nothink"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_greedy_answer_is_visible_text(tiny: Path, dtype: str) -> None:
    """`ftk smoke` needs a non-empty answer: tied, the random model repeated the prompt's last token ("\n") and
    the smoke of gpu-check failed on an H100 (bf16); the head rows of tokens that decode to nothing are zero."""
    code = (
        "import json, sys, torch; from transformers import AutoTokenizer, AutoModelForImageTextToText\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "m = AutoModelForImageTextToText.from_pretrained(sys.argv[1], dtype=getattr(torch, sys.argv[2]))\n"
        "ids = t.apply_chat_template([{'role': 'user', 'content': 'Which shape is red?'}],"
        " add_generation_prompt=True, return_tensors='pt', return_dict=True)\n"
        "o = m.generate(**ids, max_new_tokens=8, do_sample=False)[0, ids['input_ids'].shape[1]:]\n"
        "print(json.dumps(t.decode(o, skip_special_tokens=True)))\n"
    )
    r = subprocess.run(
        [str(venv_bin("train", "python")), "-c", code, str(tiny), dtype],
        capture_output=True, text=True, timeout=300, env=clean_env(), check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]).strip(), "the greedy answer decodes to nothing"
    assert json.loads((tiny / "config.json").read_text())["tie_word_embeddings"] is False


def test_llamafactory_template_encodes_images_like_the_processor(tiny: Path) -> None:
    code, same = _image_prompt(tiny, "qwen3_vl_nothink")
    assert code == 0 and same["same"] and same["image_tokens"] == 16
    # The check can fail: qwen2_vl injects a default system prompt the Qwen3-VL chat template does not have.
    code, drift = _image_prompt(tiny, "qwen2_vl")
    assert code == 3 and not drift["same"]
    assert drift["llamafactory_text"].startswith("<|im_start|>system\nYou are a helpful assistant.")
    assert not drift["processor_text"].startswith("<|im_start|>system")


def test_build_is_reproducible_and_idempotent(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    proc = run_ftk("tiny-vl", "build", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _manifest(out)["files"] == _manifest(tiny)["files"]  # same seed: byte-identical files
    proc = run_ftk("tiny-vl", "build", str(out))
    assert proc.returncode == 0 and "up to date" in proc.stderr
    proc = run_ftk("tiny-vl", "build", str(out), "--seed", "1", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = _manifest(out)["files"]
    assert files["model.safetensors"] != _manifest(tiny)["files"]["model.safetensors"]
    assert files["tokenizer.json"] == _manifest(tiny)["files"]["tokenizer.json"]


def test_qwen2_vl_variant_fits_the_qwen2_vl_template(tmp_path: Path) -> None:
    out = tmp_path / "tiny-qwen2vl"
    proc = run_ftk("tiny-vl", "build", str(out), "--arch", "qwen2vl", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "qwen2_vl"
    hidden, heads = (
        config["text_config"]["hidden_size"],
        config["text_config"]["num_attention_heads"],
    )
    assert hidden // heads in VLLM_CPU_HEAD_SIZES
    code, result = _image_prompt(out, "qwen2_vl")
    assert code == 0 and result["same"], result


def test_unknown_architecture_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_ftk("tiny-vl", "build", str(tmp_path / "x"), "--arch", "llava")
    assert proc.returncode == 2
    assert "--arch 'llava' is not supported" in proc.stderr and "qwen3vl" in proc.stderr
    assert not (tmp_path / "x").exists()
