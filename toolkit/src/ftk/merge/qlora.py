"""QLoRA adapters: how the base was quantized while training, read from the run folder next to the adapter.

A QLoRA adapter learned against a 4- or 8-bit base; merging adds it to the full-precision base, so the merged
model answers a little differently from what training saw. `ftk merge verify` then runs an A/B comparison
against the base loaded the way training loaded it (bitsandbytes, LLaMA-Factory's settings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Quantization:
    bits: int
    quant_type: str  # nf4 or fp4 (4-bit only)
    double_quant: bool
    source: Path  # the file that said so


def _run_config(adapter: Path) -> tuple[dict[str, Any], Path] | None:
    """The LLaMA-Factory config of the run that wrote ADAPTER: runs/<id>/manifest.json, else train.yaml."""
    run = adapter.parent
    manifest = run / "manifest.json"
    if manifest.is_file():
        try:
            config = json.loads(manifest.read_text(encoding="utf-8")).get("config")
        except (OSError, json.JSONDecodeError):
            config = None
        if isinstance(config, dict):
            return config, manifest
    rendered = run / "train.yaml"
    if rendered.is_file():
        try:
            config = yaml.safe_load(rendered.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None
        if isinstance(config, dict):
            return config, rendered
    return None


def training_quantization(adapter: Path) -> Quantization | None:
    """How the base was quantized while ADAPTER trained; None for plain LoRA or when no run config is found."""
    found = _run_config(adapter)
    if found is None:
        return None
    config, source = found
    bits = config.get("quantization_bit")
    if bits in (None, "", 0):
        return None
    return Quantization(
        bits=int(bits),
        quant_type=str(config.get("quantization_type") or "nf4"),
        double_quant=bool(config.get("double_quantization", True)),
        source=source,
    )


def bnb_config(q: Quantization, compute_dtype: Any) -> Any:
    """The BitsAndBytesConfig LLaMA-Factory builds for the same settings."""
    from transformers import BitsAndBytesConfig

    if q.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_quant_type=q.quant_type,
    )
