"""Small model and adapter folders for the serve tests, written by hand (valid safetensors of zeros).

They have the files and tensor names a real model/adapter has, so the preflight reads them as it reads the real
ones, without torch and in milliseconds.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

PROJ = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
CHAT_TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>"


def write_safetensors(path: Path, shapes: dict[str, list[int]], dtype: str = "F32") -> None:
    size_of = {"F32": 4, "BF16": 2, "F16": 2}[dtype]
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = size_of
        for d in shape:
            n *= d
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + n],
        }
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def llama_shapes(hidden: int, inter: int, layers: int, heads: int, kv: int, head_dim: int) -> dict[str, tuple]:
    """(out, in) of each projection of a Llama decoder layer."""
    return {
        "self_attn.q_proj": (heads * head_dim, hidden),
        "self_attn.k_proj": (kv * head_dim, hidden),
        "self_attn.v_proj": (kv * head_dim, hidden),
        "self_attn.o_proj": (hidden, heads * head_dim),
        "mlp.gate_proj": (inter, hidden),
        "mlp.up_proj": (inter, hidden),
        "mlp.down_proj": (hidden, inter),
    }


def make_model(
    folder: Path,
    hidden: int = 64,
    layers: int = 2,
    vocab: int = 128,
    max_positions: int = 4096,
    tokenizer: bool = True,
    template: bool = True,
    config: bool = True,
) -> Path:
    """A tiny Llama-shaped model folder (config.json, weights, tokenizer, chat template)."""
    folder.mkdir(parents=True, exist_ok=True)
    heads, kv, head_dim, inter = 1, 1, 64, 2 * hidden
    if config:
        (folder / "config.json").write_text(
            json.dumps(
                {
                    "architectures": ["LlamaForCausalLM"],
                    "model_type": "llama",
                    "hidden_size": hidden,
                    "intermediate_size": inter,
                    "num_hidden_layers": layers,
                    "num_attention_heads": heads,
                    "num_key_value_heads": kv,
                    "head_dim": head_dim,
                    "vocab_size": vocab,
                    "max_position_embeddings": max_positions,
                    "torch_dtype": "float32",
                    "tie_word_embeddings": True,
                }
            )
        )
    shapes: dict[str, list[int]] = {
        "model.embed_tokens.weight": [vocab, hidden],
        "model.norm.weight": [hidden],
    }
    for i in range(layers):
        for name, (out_f, in_f) in llama_shapes(hidden, inter, layers, heads, kv, head_dim).items():
            shapes[f"model.layers.{i}.{name}.weight"] = [out_f, in_f]
    write_safetensors(folder / "model.safetensors", shapes)
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    tok_cfg = {"chat_template": CHAT_TEMPLATE} if template else {}
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    return folder


def make_adapter(
    folder: Path,
    model: Path,
    r: int = 8,
    prefix: str = "base_model.model.model.",
    base: str | None = None,
    targets: tuple[str, ...] = PROJ,
) -> Path:
    """A PEFT-shaped LoRA adapter for `model` (its shapes), naming `base` as base_model_name_or_path."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((model / "config.json").read_text())
    hidden, inter, layers = (
        cfg["hidden_size"],
        cfg["intermediate_size"],
        cfg["num_hidden_layers"],
    )
    shapes: dict[str, list[int]] = {}
    proj = llama_shapes(
        hidden,
        inter,
        layers,
        cfg["num_attention_heads"],
        cfg["num_key_value_heads"],
        cfg["head_dim"],
    )
    for i in range(layers):
        for name in targets:
            out_f, in_f = proj[name]
            shapes[f"{prefix}layers.{i}.{name}.lora_A.weight"] = [r, in_f]
            shapes[f"{prefix}layers.{i}.{name}.lora_B.weight"] = [out_f, r]
    write_safetensors(folder / "adapter_model.safetensors", shapes)
    (folder / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": r,
                "lora_alpha": 2 * r,
                "task_type": "CAUSAL_LM",
                "base_model_name_or_path": str(model) if base is None else base,
                "target_modules": sorted({t.split(".")[-1] for t in targets}),
            }
        )
    )
    return folder
