"""Greedy outputs of a merged model against its base + adapter (transformers + peft, one after the other).

In float32 a correct merge gives identical token ids; any difference is reported with its prompt. For a QLoRA
adapter, `ab_quantized` also compares the merged model with what training saw (the base quantized by
bitsandbytes + the adapter): differences there are the expected QLoRA drift, shown for a person to judge.
Runs in the train venv (peft). Models are loaded one at a time so memory holds one model.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftk.merge.qlora import Quantization, bnb_config

PROMPTS = (
    "Who are you?",
    "What is the capital of France?",
    "Name three colours.",
    "Write one sentence about rivers.",
    "What is 12 times 7?",
    "Say hello in French.",
)


@dataclass
class Comparison:
    prompt: str
    expected: str  # base + adapter
    got: str  # merged
    same: bool


def _model_class(folder: Path) -> Any:
    import transformers

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if "vision_config" in config:
        return transformers.AutoModelForImageTextToText
    return transformers.AutoModelForCausalLM


def _generate(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int) -> list[list[int]]:
    import torch

    outs = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(
                **ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        outs.append(out[0, ids["input_ids"].shape[1] :].tolist())
    return outs


def _on_device() -> dict[str, Any]:
    """from_pretrained arguments: GPU 0 when there is one (its bf16 kernels are what vLLM runs), else nothing (CPU)."""
    import torch

    return {"device_map": "cuda:0"} if torch.cuda.is_available() else {}


def _base_plus_adapter(base: Path, adapter: Path, torch_dtype: Any, quantization: Quantization | None) -> Any:
    from peft import PeftModel

    kwargs: dict[str, Any] = {"dtype": torch_dtype, **_on_device()}
    if quantization is not None:
        kwargs["quantization_config"] = bnb_config(quantization, torch_dtype)
        kwargs["device_map"] = "auto"
    model = _model_class(base).from_pretrained(base, **kwargs)
    return PeftModel.from_pretrained(model, adapter).eval()


def compare(
    merged: Path,
    base: Path,
    adapter: Path,
    n_prompts: int = 3,
    max_new_tokens: int = 24,
    dtype: str = "float32",
    quantization: Quantization | None = None,
) -> list[Comparison]:
    """Greedy answers of base + adapter (the base quantized as in training when `quantization` is given) vs MERGED."""
    import torch
    from transformers import AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    prompts = list(PROMPTS[: max(1, n_prompts)])
    tokenizer = AutoTokenizer.from_pretrained(merged)
    model = _base_plus_adapter(base, adapter, torch_dtype, quantization)
    expected = _generate(model, tokenizer, prompts, max_new_tokens)
    del model
    gc.collect()
    model = _model_class(merged).from_pretrained(merged, dtype=torch_dtype, **_on_device()).eval()
    got = _generate(model, tokenizer, prompts, max_new_tokens)
    del model
    gc.collect()
    return [
        Comparison(
            p,
            tokenizer.decode(e, skip_special_tokens=True),
            tokenizer.decode(g, skip_special_tokens=True),
            e == g,
        )
        for p, e, g in zip(prompts, expected, got, strict=True)
    ]


def files(merged: Path) -> list[tuple[str, int, str]]:
    from ftk.merge.finish import purpose

    return [(p.name, p.stat().st_size, purpose(p.name)) for p in sorted(merged.iterdir()) if p.is_file()]
