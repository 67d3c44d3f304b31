"""`ftk plan train`: memory per GPU of a LoRA run for 1..N GPUs (DDP / ZeRO-2 keep the base weights on every
GPU, ZeRO-3 shards them), and the time the data takes from a measured throughput. An estimate from the model's
config, stated as one: the real peak depends on the kernels, the template's lengths and fragmentation.
Pure functions; commands/plan.py prints them."""

from __future__ import annotations

import math
from dataclasses import dataclass

LORA_STATE_BYTES = 16  # per trainable parameter: fp32 weight 4 + gradient 4 + Adam m and v 8
SHARDED_STATE_BYTES = 12  # of those, what ZeRO-2/3 split across GPUs (gradient and Adam states)
ACTIVATION_LAYERS_EXTRA = 34  # one layer's full activations (in hidden-size units) recomputed by checkpointing
SCALING_EFFICIENCY = 0.9  # throughput kept per extra GPU (gradient all-reduce); measure yours with `make bench`


@dataclass
class TrainRow:
    gpus: int
    zero: str  # ddp | zero2 | zero3
    weights: int
    lora_state: int
    activations: int
    total: int
    fits: bool
    hours: float | None  # for the tokens given, from the measured tokens/s of one GPU


def lora_params(hidden: int, inter: int, heads: int, kv_heads: int, head_dim: int, layers: int, rank: int) -> int:
    """LoRA A and B on every linear layer of a decoder block (LORA_TARGET=all): r x (in + out) each."""
    q_out, kv_out = heads * head_dim, kv_heads * head_dim
    shapes = [(hidden, q_out), (hidden, kv_out), (hidden, kv_out), (q_out, hidden)]
    shapes += [(hidden, inter), (hidden, inter), (inter, hidden)]
    return layers * sum(rank * (i + o) for i, o in shapes)


def activation_bytes(batch: int, cutoff: int, hidden: int, layers: int, dtype_bytes: int) -> int:
    """Gradient checkpointing (LLaMA-Factory's default): one hidden state per layer kept, one layer recomputed."""
    return batch * cutoff * hidden * dtype_bytes * (layers + ACTIVATION_LAYERS_EXTRA)


def rows(
    weight_bytes: int,
    lora: int,
    activations: int,
    gpu_bytes: int,
    overhead: int,
    gpu_counts: list[int],
    tokens: int = 0,
    tokens_per_s: float = 0.0,
) -> list[TrainRow]:
    out = []
    for n in gpu_counts:
        for zero in ("ddp", "zero2", "zero3"):
            if n == 1 and zero != "ddp":
                continue
            weights = math.ceil(weight_bytes / n) if zero == "zero3" else weight_bytes
            shard = n if zero != "ddp" else 1
            state = lora * (LORA_STATE_BYTES - SHARDED_STATE_BYTES) + math.ceil(lora * SHARDED_STATE_BYTES / shard)
            total = weights + state + activations + overhead
            speed = tokens_per_s * n * (SCALING_EFFICIENCY ** math.log2(n) if n > 1 else 1.0)
            hours = tokens / speed / 3600 if tokens and speed else None
            out.append(TrainRow(n, zero, weights, state, activations, total, total <= gpu_bytes, hours))
    return out
