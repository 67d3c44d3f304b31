"""A PEFT-format LoRA adapter with small random weights for every projection of a model folder: the stand-in
when no trained adapter exists (gpu-check's serve phases, the serving benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

from ftk.hf.modelinfo import ModelInfo

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def random_adapter(model: Path, out: Path, r: int = 8) -> Path:
    """Write `out`/adapter_model.safetensors and adapter_config.json (torch, no PEFT); seeded, so reproducible."""
    # torch only here: the toolkit image has no torch and never builds adapters
    import torch
    from safetensors.torch import save_file

    info = ModelInfo.load(model)
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for name, t in info.tensors.items():
        module = name.removesuffix(".weight")
        if module.rsplit(".", 1)[-1] in TARGETS and len(t.shape) == 2:
            out_f, in_f = t.shape
            tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(r, in_f, generator=gen) * 0.02
            tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(out_f, r, generator=gen) * 0.02
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": r,
        "lora_alpha": 2 * r,
        "lora_dropout": 0.0,
        "target_modules": list(TARGETS),
        "base_model_name_or_path": str(model),
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
    }
    (out / "adapter_config.json").write_text(json.dumps(config))
    return out
