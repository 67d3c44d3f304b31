"""A random-weight Llama-architecture text model with a real tokenizer and chat template, built from a config.

No hub: the tokenizer is the project's own byte-level BPE (ftk.vl.tiny_model.build_tokenizer, ChatML special
tokens) and the chat template renders what LLaMA-Factory's `qwen` template does with the text recipe's system
prompt, so the template drift check passes. The embedding table is padded to `vocab` rows like real models',
so the serving cost of the LM head is realistic. Sizes: `small` trains and serves in seconds; `1b` (1.17B
parameters, bf16, 2.3 GB) is the one the H200 figures in docs/gpu.md come from.

    python -m ftk.gpucheck.random_text OUT [--size 1b|small] [--seed 0]   (in the train python: torch, transformers)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ftk.files import atomic_dir
from ftk.vl import tiny_model
from ftk.vl.chat_template import chat_template

SIZES: dict[str, dict[str, int]] = {
    # hidden, intermediate, layers, heads, KV heads (GQA), vocabulary rows; head size 64 everywhere
    "small": {"hidden": 256, "intermediate": 1024, "layers": 4, "heads": 4, "kv_heads": 2, "vocab": 32768},
    "1b": {"hidden": 2048, "intermediate": 8192, "layers": 16, "heads": 32, "kv_heads": 8, "vocab": 49152},
}
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # configs/train/text_lora_sft.yaml's
TEMPLATE = "qwen"  # the LLaMA-Factory template rendering ChatML like the chat template written here
MAX_POSITIONS = 8192


def config_dict(size: str) -> dict[str, Any]:
    """The LlamaConfig keyword arguments of one size (pure: the CPU tests check the shapes without torch)."""
    if size not in SIZES:
        raise ValueError(f"--size {size!r}: use one of {', '.join(SIZES)}")
    s = SIZES[size]
    return {
        "hidden_size": s["hidden"],
        "intermediate_size": s["intermediate"],
        "num_hidden_layers": s["layers"],
        "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"],
        "head_dim": s["hidden"] // s["heads"],
        "vocab_size": s["vocab"],
        "max_position_embeddings": MAX_POSITIONS,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "rms_norm_eps": 1e-5,
    }


def parameters(size: str) -> int:
    """Parameter count of a size, from its config (what safetensors will hold)."""
    c = config_dict(size)
    h, inter, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    hd, heads, kv = c["head_dim"], c["num_attention_heads"], c["num_key_value_heads"]
    per_layer = 2 * h * heads * hd + 2 * h * kv * hd + 3 * h * inter + 2 * h
    return layers * per_layer + 2 * vocab * h + h


def build(out: Path, size: str = "1b", seed: int = 0) -> dict[str, Any]:
    """Write the model folder `out` (bf16 safetensors, tokenizer, chat template, generation config)."""
    # torch and transformers here only: the toolkit venv's gpu-check imports this module for SIZES
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = config_dict(size)
    tokenizer = tiny_model.build_tokenizer(tiny_model.ARCHS["qwen2vl"])
    tokenizer.chat_template = chat_template(SYSTEM)
    if len(tokenizer) > cfg["vocab_size"]:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the {cfg['vocab_size']} rows")
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = LlamaConfig(**cfg, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad, dtype="bfloat16")
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
        # Rows past the tokenizer are padding: zero logits, below the best real token's, so greedy answers decode
        # to text (a random head made `ftk smoke` read empty answers: most argmax ids had no token).
        with torch.no_grad():
            model.lm_head.weight[len(tokenizer) :].zero_()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tok_cfg_path = tmp / "tokenizer_config.json"
        tok_cfg = json.loads(tok_cfg_path.read_text())
        tok_cfg["chat_template"] = tokenizer.chat_template
        tok_cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
        tok_cfg_path.write_text(json.dumps(tok_cfg, indent=2) + "\n")
        gen = {"bos_token_id": pad, "eos_token_id": [eos, pad], "pad_token_id": pad}
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        params = sum(p.numel() for p in model.parameters())
        manifest = {"size": size, "seed": seed, "parameters": params, "template": TEMPLATE, "config": cfg}
        (tmp / "ftk-random-model.json").write_text(json.dumps(manifest, indent=2) + "\n")
        for path in tmp.iterdir():
            path.chmod(0o644)  # readable by the container users of the serve image
        tmp.chmod(0o755)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--size", default="1b", choices=sorted(SIZES))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(json.dumps(build(args.out.resolve(), args.size, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
