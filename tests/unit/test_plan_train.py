"""`ftk plan train` (LoRA memory per GPU for DDP, ZeRO-2, ZeRO-3) and `ftk plan replicas` on the default model."""

from __future__ import annotations

from conftest import HOME, clean_env, run_ftk
from ftk.train import plan

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"


def test_lora_parameters_count_every_linear_layer_of_a_block() -> None:
    # SmolLM2-135M: hidden 576, MLP 1536, 9 heads (3 KV) of 64, 30 layers; rank 8 on q k v o gate up down
    per_layer = 8 * ((576 + 576) + 2 * (576 + 192) + (576 + 576) + 2 * (576 + 1536) + (1536 + 576))
    assert plan.lora_params(576, 1536, 9, 3, 64, 30, 8) == 30 * per_layer


def test_zero3_shards_the_weights_and_zero2_the_optimizer_state() -> None:
    rows = {(r.gpus, r.zero): r for r in plan.rows(8_000, 1_000, 100, 10**9, 0, [1, 4], tokens=3600, tokens_per_s=1)}
    assert rows[(4, "ddp")].weights == rows[(1, "ddp")].weights == 8_000
    assert rows[(4, "zero3")].weights == 2_000
    assert rows[(4, "zero2")].lora_state == 1_000 * 4 + 1_000 * 12 // 4 < rows[(4, "ddp")].lora_state
    assert rows[(1, "ddp")].hours == 1.0 and rows[(4, "ddp")].hours < 1.0 / 4 / 0.8


def test_plan_train_names_the_fewest_gpus_and_the_deepspeed_config() -> None:
    r = run_ftk("plan", "train", "--model", str(MODEL), "--gpu-memory", "2400MiB", "--max-gpus", "4", env=clean_env())
    assert r.returncode == 0, r.stderr
    assert "fewest GPUs: 2 (zero3; .env: NPROC_PER_NODE=2, DEEPSPEED_CONFIG=configs/deepspeed/zero3.json)" in r.stdout
    r = run_ftk("plan", "train", "--model", str(MODEL), "--gpu-memory", "1GiB", env=clean_env())
    assert r.returncode == 1 and "QUANTIZATION_BIT=4" in r.stderr


def test_plan_replicas_from_a_measured_rate() -> None:
    r = run_ftk("plan", "replicas", "--rate", "20", "--replica-rps", "6", env=clean_env(TENSOR_PARALLEL_SIZE="2"))
    assert r.returncode == 0, r.stderr
    assert "5 (SERVE_MIN_REPLICAS" in r.stdout and "10 (TENSOR_PARALLEL_SIZE=2 each)" in r.stdout
