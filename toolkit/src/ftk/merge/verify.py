"""Greedy outputs of a merged model against its base + adapter (transformers + peft, one after the other).

In float32 a correct merge gives identical token ids; any difference is reported with its prompt. In bfloat16 or
float16 the merged weights are rounded once more than W + BA computed on the fly, so where the model is nearly
undecided between two tokens a correct merge can pick the other one, and from there the answers part (seen on
the H100 with a random Qwen3-VL). There, the next-token distributions decide: both models are run on base +
adapter's own answer (teacher forcing) and the mean KL divergence of the merged model from it must stay within
KL_SHARE of the adapter's own effect (base + adapter vs the base alone) or under KL_FLOOR. A wrong merge (an
adapter missing, scaled wrong, another adapter) moves the model by the order of the adapter's effect.
For a QLoRA adapter, `ab_quantized` also compares the merged model with what training saw (the base quantized by
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


KL_SHARE = 0.05  # of the adapter's own effect: rounding moves the model far less than a wrong merge
KL_FLOOR = 1e-4  # nats per token: an adapter with almost no effect (few steps) still passes a rounded merge


@dataclass
class Comparison:
    prompt: str
    expected: str  # base + adapter
    got: str  # merged
    same: bool  # identical greedy token ids
    kl_merged: float = 0.0  # mean KL(base + adapter || merged) per token of base + adapter's answer
    kl_base: float = 0.0  # mean KL(base + adapter || base alone): the adapter's own effect
    exact: bool = True  # float32: only identical ids pass

    @property
    def close(self) -> bool:
        """Passes the check: identical ids, or (bfloat16, float16) a distance rounding explains."""
        return self.same or (not self.exact and self.kl_merged <= max(KL_FLOOR, KL_SHARE * self.kl_base))


def _model_class(folder: Path) -> Any:
    import transformers

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if "vision_config" in config:
        return transformers.AutoModelForImageTextToText
    return transformers.AutoModelForCausalLM


def _generate(model: Any, tokenizer: Any, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    import torch

    outs = []
    for ids in prompts:
        with torch.no_grad():
            out = model.generate(
                input_ids=torch.tensor([ids], device=model.device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=model.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        outs.append(out[0, len(ids) :].tolist())
    return outs


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _log_probs(model: Any, prompt: list[int], answer: list[int]) -> Any:
    """Next-token log-probabilities (float32) at each token of `answer`, the model fed prompt + answer."""
    import torch

    ids = torch.tensor([prompt + answer], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]
    return torch.log_softmax(logits.float(), dim=-1)


def _kl(p_log: Any, q_log: Any) -> float:
    """Mean over positions of KL(P || Q), in nats."""
    return float((p_log.exp() * (p_log - q_log)).sum(-1).mean())


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
    ids = [_prompt_ids(tokenizer, p) for p in prompts]
    model = _base_plus_adapter(base, adapter, torch_dtype, quantization)
    expected = _generate(model, tokenizer, ids, max_new_tokens)
    reference = [_log_probs(model, i, e) for i, e in zip(ids, expected, strict=True)]
    with model.disable_adapter():
        kl_base = [_kl(r, _log_probs(model, i, e)) for r, i, e in zip(reference, ids, expected, strict=True)]
    del model
    gc.collect()
    model = _model_class(merged).from_pretrained(merged, dtype=torch_dtype, **_on_device()).eval()
    got = _generate(model, tokenizer, ids, max_new_tokens)
    kl_merged = [_kl(r, _log_probs(model, i, e)) for r, i, e in zip(reference, ids, expected, strict=True)]
    del model
    gc.collect()
    return [
        Comparison(
            p,
            tokenizer.decode(e, skip_special_tokens=True),
            tokenizer.decode(g, skip_special_tokens=True),
            e == g,
            km,
            kb,
            exact=dtype == "float32",
        )
        for p, e, g, km, kb in zip(prompts, expected, got, kl_merged, kl_base, strict=True)
    ]


def files(merged: Path) -> list[tuple[str, int, str]]:
    from ftk.merge.finish import purpose

    return [(p.name, p.stat().st_size, purpose(p.name)) for p in sorted(merged.iterdir()) if p.is_file()]
