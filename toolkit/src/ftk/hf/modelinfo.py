"""What a Hugging Face model folder holds, from config.json and safetensors headers (no weights loaded)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ftk.hf.tensors import TensorInfo, module_of, read_tensors


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}): {err.msg}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


@dataclass
class ModelInfo:
    """A model folder as vLLM will see it."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ModelInfo:
        return cls(path=path, config=read_json(path / "config.json"))

    @property
    def text_config(self) -> dict[str, Any]:
        """The language model's config (vision-language configs nest it under text_config)."""
        text = self.config.get("text_config")
        return text if isinstance(text, dict) else self.config

    def text_value(self, key: str, default: Any = None) -> Any:
        return self.text_config.get(key, self.config.get(key, default))

    @property
    def is_vision_language(self) -> bool:
        return isinstance(self.config.get("vision_config"), dict)

    @property
    def architectures(self) -> list[str]:
        return list(self.config.get("architectures") or [])

    @property
    def max_position_embeddings(self) -> int | None:
        value = self.text_value("max_position_embeddings")
        return int(value) if value else None

    @property
    def num_layers(self) -> int:
        return int(self.text_value("num_hidden_layers", 0))

    @property
    def hidden_size(self) -> int:
        return int(self.text_value("hidden_size", 0))

    @property
    def num_attention_heads(self) -> int:
        return int(self.text_value("num_attention_heads", 0))

    @property
    def num_kv_heads(self) -> int:
        return int(self.text_value("num_key_value_heads") or self.num_attention_heads)

    @property
    def head_dim(self) -> int:
        value = self.text_value("head_dim")
        if value:
            return int(value)
        return self.hidden_size // self.num_attention_heads if self.num_attention_heads else 0

    @property
    def vocab_size(self) -> int:
        return int(self.text_value("vocab_size", 0))

    @property
    def torch_dtype(self) -> str:
        return str(self.text_value("torch_dtype") or self.text_value("dtype") or "float32")

    def identity(self) -> dict[str, Any]:
        """The fields that must agree for an adapter trained on one copy of a model to fit another."""
        return {
            "architectures": self.architectures,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "vocab_size": self.vocab_size,
        }

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        return read_tensors(self.path)

    @cached_property
    def modules(self) -> set[str]:
        """Module names that hold weights (e.g. `model.layers.0.self_attn.q_proj`)."""
        return {module_of(name) for name in self.tensors}

    def has_weights(self) -> bool:
        return any(self.path.glob("*.safetensors")) or any(self.path.glob("*.bin"))
