"""Edits that turn transformers' GGUF conversion into a folder every reader in the pipeline loads.

Pure functions on the JSON documents, so each fix is tested on its own:
- config.json: `rope_theta` at the top level (transformers 4.x, LLaMA-Factory's pin) next to 5.x's
  `rope_parameters`, `torch_dtype` next to `dtype`, no GGUF quantization block, no GGUF display name;
- tokenizer.json: SmolLM2's digit-splitting pre-tokenizer, which the GGUF tokenizer does not carry;
- tokenizer_config.json: a class name that 4.x and 5.x both know, the model's input names, and the chat
  template inline (4.x does not read `chat_template.jinja`);
- generation_config.json: stop at `<|im_end|>`.
"""

from __future__ import annotations

import copy
from typing import Any

# How SmolLM2 (like StarCoder) splits text before BPE: every digit on its own, then GPT-2's byte-level regex.
SMOLLM2_PRE_TOKENIZER: dict[str, Any] = {
    "type": "Sequence",
    "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    ],
}

# Keys of transformers' config that describe the GGUF file rather than the model.
_CONFIG_DROP = ("quantization_config", "_model_name_or_path", "_name_or_path")


def fix_config(config: dict[str, Any], dtype: str) -> dict[str, Any]:
    out = {k: v for k, v in copy.deepcopy(config).items() if k not in _CONFIG_DROP}
    rope = out.get("rope_parameters") or {}
    theta = out.get("rope_theta", rope.get("rope_theta"))
    if theta is None:
        raise ValueError("config has no rope_theta (neither top level nor rope_parameters)")
    out["rope_theta"] = float(theta)
    out.setdefault("rope_scaling", None)
    out["dtype"] = dtype
    out["torch_dtype"] = dtype
    out.setdefault("architectures", ["LlamaForCausalLM"])
    return out


def fix_generation_config(gen: dict[str, Any], eos_id: int, pad_id: int, bos_id: int) -> dict[str, Any]:
    out = {k: v for k, v in copy.deepcopy(gen).items() if k != "_from_model_config"}
    out.update({"bos_token_id": bos_id, "eos_token_id": eos_id, "pad_token_id": pad_id})
    return out


def restore_digit_split(tokenizer_json: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(tokenizer_json)
    out["pre_tokenizer"] = copy.deepcopy(SMOLLM2_PRE_TOKENIZER)
    return out


def has_digit_split(tokenizer_json: dict[str, Any]) -> bool:
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if isinstance(pre, dict) else []
    return any(s.get("type") == "Digits" and s.get("individual_digits") for s in steps if isinstance(s, dict))


def tokenizer_config(
    *, chat_template: str, bos: str, eos: str, pad: str, unk: str, model_max_length: int
) -> dict[str, Any]:
    """A tokenizer_config.json that transformers 4.x and 5.x read alike (no `TokenizersBackend` name)."""
    return {
        "bos_token": bos,
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": False,
        "eos_token": eos,
        "model_max_length": model_max_length,
        # PreTrainedTokenizerFast in 4.x would also return token_type_ids, which Llama's generate() rejects.
        "model_input_names": ["input_ids", "attention_mask"],
        "pad_token": pad,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": unk,
    }
