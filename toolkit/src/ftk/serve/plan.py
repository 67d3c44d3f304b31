"""GPU memory planning for vLLM from a model's config.json (and safetensors headers when present).

The arithmetic of the deploy guides' tuning table: weights per GPU under tensor parallelism, KV-cache bytes
per token, and how many sequences of MAX_MODEL_LEN fit in GPU_MEMORY_UTILIZATION of each card.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ftk.hf.modelinfo import ModelInfo
from ftk.hf.tensors import DTYPE_BYTES

GIB = 1024**3
_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGT]?)(i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1, "M": 2, "G": 3, "T": 4}


def parse_size(text: str) -> int:
    """`24GiB`, `24G`, `80GB`, `512M` -> bytes (binary units: GPU memory is reported in MiB/GiB)."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a size; write e.g. 24GiB, 80G or 512M")
    return int(float(m.group(1)) * 1024 ** _UNITS[m.group(2).upper()])


def gpu_memory_from_smi() -> tuple[int, int] | None:
    """(count, bytes of the smallest card) from nvidia-smi, or None without GPUs."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    sizes = [int(float(x)) * 1024**2 for x in out.split() if x.replace(".", "").isdigit()]
    return (len(sizes), min(sizes)) if sizes else None


def estimate_params(model: ModelInfo) -> int:
    """Parameters of a Llama-like decoder from its config (used when there are no safetensors to count)."""
    h, layers, vocab = model.hidden_size, model.num_layers, model.vocab_size
    heads, kv, hd = model.num_attention_heads, model.num_kv_heads, model.head_dim
    inter = int(model.text_value("intermediate_size", 4 * h))
    attn = h * heads * hd * 2 + h * kv * hd * 2
    mlp = 3 * h * inter
    per_layer = attn + mlp + 2 * h
    tied = bool(model.text_value("tie_word_embeddings", model.config.get("tie_word_embeddings", False)))
    embed = vocab * h * (1 if tied else 2)
    total = layers * per_layer + embed + h
    vision = model.config.get("vision_config")
    if isinstance(vision, dict):  # ViT blocks: attention 4h^2 + MLP 2*h*inter
        vh = int(vision.get("hidden_size") or vision.get("embed_dim") or 0)
        vi = int(vision.get("intermediate_size") or 4 * vh)
        depth = int(vision.get("depth") or vision.get("num_hidden_layers") or 0)
        total += depth * (4 * vh * vh + 2 * vh * vi)
    return total


@dataclass
class ModelSizes:
    params: int
    weight_bytes: int  # at the serving dtype
    counted: bool  # True: from safetensors headers; False: estimated from config.json
    dtype_bytes: int
    kv_bytes_per_token: int  # whole model, all layers, K and V


def model_sizes(model: ModelInfo, dtype: str = "auto", kv_cache_dtype: str = "auto") -> ModelSizes:
    tensors = model.tensors if model.has_weights() else {}
    if tensors:
        params = sum(t.numel for t in tensors.values())
        checkpoint_bytes = sum(t.numel * DTYPE_BYTES.get(t.dtype, 2) for t in tensors.values())
        counted = True
    else:
        params, checkpoint_bytes, counted = estimate_params(model), 0, False
    dtype_bytes = DTYPE_BYTES.get(model.torch_dtype if dtype == "auto" else dtype, 2)
    weight_bytes = checkpoint_bytes if dtype == "auto" and counted else params * dtype_bytes
    kv_bytes = dtype_bytes if kv_cache_dtype == "auto" else DTYPE_BYTES.get(kv_cache_dtype, 1)
    kv_per_token = 2 * model.num_layers * model.num_kv_heads * model.head_dim * kv_bytes
    return ModelSizes(params, weight_bytes, counted, dtype_bytes, kv_per_token)


@dataclass
class PlanRow:
    tp: int
    gpus_needed: int
    weights_per_gpu: int
    kv_per_token_per_gpu: int
    kv_budget_per_gpu: int  # bytes left for the KV cache on each GPU
    tokens: int  # KV-cache tokens that fit (per replica)
    sequences: int  # full-length sequences of MAX_MODEL_LEN that fit
    fits_model_len: bool  # at least one sequence of MAX_MODEL_LEN: vLLM starts
    fits_num_seqs: bool  # MAX_NUM_SEQS full-length sequences at once
    valid: bool  # TP divides the attention heads
    note: str = ""


def plan_row(
    model: ModelInfo,
    sizes: ModelSizes,
    tp: int,
    gpu_bytes: int,
    utilization: float,
    max_model_len: int,
    max_num_seqs: int,
    overhead: int,
    gpus_available: int | None,
) -> PlanRow:
    heads, kv = model.num_attention_heads, model.num_kv_heads
    valid = heads % tp == 0 if heads else True
    # KV heads are split across GPUs; with fewer KV heads than GPUs each GPU keeps a copy of one.
    kv_heads_per_gpu = max(1, -(-kv // tp)) if kv else 0
    kv_per_token_per_gpu = sizes.kv_bytes_per_token // kv * kv_heads_per_gpu if kv else 0
    weights = -(-sizes.weight_bytes // tp)
    budget = int(gpu_bytes * utilization) - weights - overhead
    tokens = budget // kv_per_token_per_gpu if budget > 0 and kv_per_token_per_gpu else 0
    sequences = tokens // max_model_len
    notes = []
    if not valid:
        notes.append(f"{heads} attention heads not divisible by TP {tp}")
    if gpus_available is not None and tp > gpus_available:
        notes.append(f"needs {tp} GPUs, {gpus_available} available")
    if budget <= 0:
        notes.append("weights do not fit")
    return PlanRow(
        tp,
        tp,
        weights,
        kv_per_token_per_gpu,
        max(budget, 0),
        tokens,
        sequences,
        sequences >= 1,
        sequences >= max_num_seqs,
        valid,
        "; ".join(notes),
    )


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"
