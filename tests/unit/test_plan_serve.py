"""`ftk plan serve` arithmetic on hand-written configs of known models (no weights: parameters from config)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import clean_env, run_ftk
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import plan

GIB = 1024**3
LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}
QWEN3_VL_2B = {
    "architectures": ["Qwen3VLForConditionalGeneration"],
    "model_type": "qwen3_vl",
    "tie_word_embeddings": True,
    "text_config": {
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 262144,
        "dtype": "bfloat16",
        "tie_word_embeddings": True,
    },
    "vision_config": {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096},
}


def write(tmp_path: Path, cfg: dict) -> Path:
    folder = tmp_path / cfg["model_type"]
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_llama_8b_params_weights_and_kv_per_token(tmp_path: Path) -> None:
    model = ModelInfo.load(write(tmp_path, LLAMA_8B))
    sizes = plan.model_sizes(model)
    # attention 2*4096*4096 + 2*4096*1024, MLP 3*4096*14336, 2 norms; 32 layers; untied 128256x4096 twice
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert sizes.params == 32 * per_layer + 2 * 128256 * 4096 + 4096 == 8_030_261_248
    assert sizes.weight_bytes == 2 * sizes.params and not sizes.counted
    assert sizes.kv_bytes_per_token == 2 * 32 * 8 * 128 * 2 == 128 * 1024


def test_llama_8b_on_two_24gb_cards(tmp_path: Path) -> None:
    model = ModelInfo.load(write(tmp_path, LLAMA_8B))
    sizes = plan.model_sizes(model)
    args = {
        "gpu_bytes": 24 * GIB,
        "utilization": 0.9,
        "max_model_len": 8192,
        "max_num_seqs": 32,
        "overhead": GIB,
        "gpus_available": 2,
    }
    tp1 = plan.plan_row(model, sizes, 1, **args)
    tp2 = plan.plan_row(model, sizes, 2, **args)
    assert tp1.kv_budget_per_gpu == int(24 * GIB * 0.9) - sizes.weight_bytes - GIB
    assert tp1.tokens == tp1.kv_budget_per_gpu // (128 * 1024) and tp1.sequences == 5
    assert tp2.weights_per_gpu == sizes.weight_bytes // 2 and tp2.kv_per_token_per_gpu == 64 * 1024
    assert tp2.sequences == 26 and tp2.fits_model_len and not tp2.fits_num_seqs
    tp4 = plan.plan_row(model, sizes, 4, **args)
    assert "needs 4 GPUs, 2 available" in tp4.note
    small = plan.plan_row(model, sizes, 1, **{**args, "gpu_bytes": 16 * GIB})
    assert not small.fits_model_len and "weights do not fit" in small.note


def test_qwen3_vl_reads_text_config_and_counts_the_vision_tower(tmp_path: Path) -> None:
    model = ModelInfo.load(write(tmp_path, QWEN3_VL_2B))
    assert model.is_vision_language and model.num_layers == 28 and model.head_dim == 128
    sizes = plan.model_sizes(model)
    assert sizes.kv_bytes_per_token == 2 * 28 * 8 * 128 * 2
    text = 28 * (2 * 2048 * 16 * 128 + 2 * 2048 * 8 * 128 + 3 * 2048 * 6144 + 2 * 2048) + 151936 * 2048 + 2048
    vision = 24 * (4 * 1024 * 1024 + 2 * 1024 * 4096)
    assert sizes.params == text + vision
    assert 1.9e9 < sizes.params < 2.3e9


def test_kv_heads_fewer_than_gpus_are_replicated(tmp_path: Path) -> None:
    model = ModelInfo.load(write(tmp_path, {**LLAMA_8B, "num_key_value_heads": 2}))
    sizes = plan.model_sizes(model)
    row = plan.plan_row(model, sizes, 8, 80 * GIB, 0.9, 8192, 32, GIB, 8)
    assert row.kv_per_token_per_gpu == sizes.kv_bytes_per_token // 2  # one of the 2 KV heads per GPU


def test_fp8_kv_cache_halves_the_bytes(tmp_path: Path) -> None:
    model = ModelInfo.load(write(tmp_path, LLAMA_8B))
    assert plan.model_sizes(model, kv_cache_dtype="fp8").kv_bytes_per_token == 64 * 1024


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("24GiB", 24 * GIB),
        ("24G", 24 * GIB),
        ("512M", 512 * 1024**2),
        ("1.5GiB", int(1.5 * GIB)),
    ],
)
def test_parse_size(text: str, value: int) -> None:
    assert plan.parse_size(text) == value


def test_cli_json_and_exit_codes(tmp_path: Path) -> None:
    folder = write(tmp_path, LLAMA_8B)
    env = clean_env(TENSOR_PARALLEL_SIZE="2", MAX_MODEL_LEN="8192", PATH="/usr/bin:/bin")
    r = run_ftk(
        "plan",
        "serve",
        "--model",
        str(folder),
        "--gpus",
        "2",
        "--gpu-memory",
        "24GiB",
        "--json",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["kv_bytes_per_token"] == 131072 and data["planned_tp"] == 2
    assert [o["tp"] for o in data["options"]] == [1, 2, 4, 8]
    r = run_ftk(
        "plan",
        "serve",
        "--model",
        str(folder),
        "--gpu-memory",
        "16GiB",
        env=clean_env(TENSOR_PARALLEL_SIZE="1", MAX_MODEL_LEN="8192", PATH="/usr/bin:/bin"),
    )
    assert r.returncode == 1 and "TENSOR_PARALLEL_SIZE=1: not one sequence of MAX_MODEL_LEN=8192 fits" in r.stderr
    assert "TP" in r.stdout  # the table is printed before the verdict
    r = run_ftk("plan", "serve", "--model", str(folder), env=clean_env(PATH="/usr/bin:/bin"))
    assert r.returncode == 2 and "--gpu-memory" in r.stderr
