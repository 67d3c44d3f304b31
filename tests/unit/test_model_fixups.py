"""Each fix the default-model build applies to transformers' GGUF conversion, on its own."""

from __future__ import annotations

import json

import pytest
from ftk.model import fixups
from tokenizers import Tokenizer


def test_config_gets_top_level_rope_theta_and_drops_gguf_blocks() -> None:
    converted = {
        "_model_name_or_path": "Smollm2 135M 8k Lc100K Mix1 Ep2",
        "quantization_config": {"quant_method": "gguf", "gguf_file": "/abs/path.gguf"},
        "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"},
        "dtype": "float32",
        "model_type": "llama",
    }
    out = fixups.fix_config(converted, "float32")
    assert out["rope_theta"] == 100000.0
    assert out["rope_parameters"]["rope_theta"] == 100000.0  # 5.x readers keep theirs
    assert out["torch_dtype"] == out["dtype"] == "float32"
    assert "quantization_config" not in out and "_model_name_or_path" not in out
    assert out["architectures"] == ["LlamaForCausalLM"]


def test_config_without_rope_theta_is_refused() -> None:
    with pytest.raises(ValueError, match="rope_theta"):
        fixups.fix_config({"model_type": "llama"}, "float32")


def test_generation_config_stops_at_im_end() -> None:
    out = fixups.fix_generation_config({"_from_model_config": True, "eos_token_id": 0}, 2, 2, 1)
    assert out == {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2}


def _byte_level_tokenizer() -> dict:
    """A tiny byte-level BPE like the one the GGUF gives (no Digits step)."""
    from tokenizers import models, pre_tokenizers

    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate("0123456789abcĠ")}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return json.loads(tok.to_str())


def test_digit_split_restored_and_effective() -> None:
    before = _byte_level_tokenizer()
    assert not fixups.has_digit_split(before)
    after = fixups.restore_digit_split(before)
    assert fixups.has_digit_split(after)
    assert before["pre_tokenizer"]["type"] == "ByteLevel"  # input untouched
    pieces = Tokenizer.from_str(json.dumps(after)).pre_tokenizer.pre_tokenize_str("a 2024")
    assert [p for p, _ in pieces] == ["a", "Ġ", "2", "0", "2", "4"]


def test_tokenizer_config_is_readable_by_old_transformers() -> None:
    cfg = fixups.tokenizer_config(
        chat_template="{{ x }}",
        bos="<|im_start|>",
        eos="<|im_end|>",
        pad="<|im_end|>",
        unk="<|endoftext|>",
        model_max_length=8192,
    )
    assert cfg["tokenizer_class"] == "PreTrainedTokenizerFast"  # 4.x has no TokenizersBackend
    assert cfg["chat_template"] == "{{ x }}"
    assert cfg["eos_token"] == "<|im_end|>"
    assert cfg["model_input_names"] == [
        "input_ids",
        "attention_mask",
    ]  # no token_type_ids for Llama's generate()
