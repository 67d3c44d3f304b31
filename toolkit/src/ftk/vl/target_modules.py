"""Compare a LoRA adapter's target modules with the module names of the model it will be served on.

A LoRA whose module names do not exist in the served model loads without error and does nothing (FIELD.md).
Two ways this happens with vision-language models:
- the adapter targets the vision tower or projector, which vLLM ignores unless started with
  `--enable-tower-connector-lora` (and only for models that support it);
- the language-model prefix differs: PEFT names modules as the training framework's model class does
  (`model.language_model.layers.N...` for Qwen-VL in transformers >= 4.52), while the model folder may store
  the older layout (`model.layers.N...`, `visual...`). vLLM maps the known Qwen-VL prefixes; other servers and
  plain PEFT loading of the checkpoint under a different class may not.

Everything is read from file headers (adapter_config.json, safetensors headers or index), never by loading
weights, so the check costs milliseconds and runs in any venv.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

# Module-path markers of vision towers and multimodal projectors across common VL architectures.
VISION_MARKERS = (
    "visual.",
    "vision_tower.",
    "vision_model.",
    "multi_modal_projector.",
    "mm_projector.",
    "vision.",
)
# Language-model prefixes that name the same modules in different layouts, mapped to one canonical form.
_PREFIX_ALIASES = (
    ("model.language_model.model.", "model."),
    ("model.language_model.", "model."),
    ("language_model.model.", "model."),
    ("language_model.lm_head.", "lm_head."),
    ("model.visual.", "visual."),
)
_LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+?)\.lora_(?:A|B|embedding_A|embedding_B)(?:\.[^.]+)?\.weight$"
)
_MAX_HEADER = 100 * 1024 * 1024


class TargetCheckError(ValueError):
    """A file could not be read; the message names it and the fix."""


@dataclass
class TargetReport:
    adapter: Path
    model: Path
    adapter_modules: list[str]
    matched: list[str] = field(default_factory=list)  # exact module names present in the model
    remapped: list[tuple[str, str]] = field(default_factory=list)  # (adapter name, model name) prefix differs
    vision: list[str] = field(default_factory=list)  # vision tower / projector modules
    missing: list[str] = field(default_factory=list)  # no such module in the model at all
    tower_lora: bool = False  # the server applies LoRA to the vision tower too

    @property
    def language_modules(self) -> int:
        """Modules whose LoRA the server applies to the language model."""
        names = self.matched + [adapter_name for adapter_name, _ in self.remapped]
        return sum(1 for name in names if not is_vision(name))

    @property
    def errors(self) -> list[str]:
        out = []
        if self.missing:
            out.append(
                f"{len(self.missing)} adapter module(s) do not exist in {self.model}, "
                f"e.g. {self.missing[0]}: "
                "the adapter was trained on another architecture; train it on this base model"
            )
        if self.adapter_modules and not self.missing and self.language_modules == 0 and not self.tower_lora:
            out.append(
                f"every LoRA module of {self.adapter} is in the vision tower/projector, which vLLM ignores "
                "(the adapter would do nothing): train with freeze_vision_tower: true and lora_target: all, "
                "or serve with --enable-tower-connector-lora"
            )
        return out

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.vision and not self.tower_lora and self.language_modules:
            out.append(
                f"{len(self.vision)} adapter module(s) are in the vision tower/projector "
                f"(e.g. {self.vision[0]}): vLLM ignores them unless started with "
                "--enable-tower-connector-lora; only the language-model part of this adapter will act"
            )
        if self.remapped:
            a, m = self.remapped[0]
            out.append(
                f"{len(self.remapped)} adapter module name(s) use another prefix than the model folder "
                f"(adapter {a}, model {m}): vLLM maps the Qwen-VL prefixes, other loaders may not"
            )
        return out


def is_vision(module: str) -> bool:
    name = canonical(module)
    return any(name.startswith(m) or f".{m}" in name for m in VISION_MARKERS)


def canonical(module: str) -> str:
    for old, new in _PREFIX_ALIASES:
        if module.startswith(old):
            return new + module[len(old) :]
    return module


def safetensors_names(path: Path) -> list[str]:
    """Tensor names in a safetensors file, from its JSON header (no tensor data is read)."""
    try:
        with path.open("rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise TargetCheckError(f"{path}: not a safetensors file (shorter than its header)")
            (size,) = struct.unpack("<Q", raw)
            if size > _MAX_HEADER:
                raise TargetCheckError(f"{path}: not a safetensors file (header of {size} bytes)")
            header = json.loads(f.read(size))
    except (OSError, ValueError) as err:
        raise TargetCheckError(
            f"{path}: cannot read the safetensors header ({err}); re-export the file"
        ) from None
    return [k for k in header if k != "__metadata__"]


def model_weight_names(model_dir: Path) -> list[str]:
    """Weight names of a model folder: the sharded index's weight_map, else every *.safetensors header."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            return list(json.loads(index.read_text())["weight_map"])
        except (OSError, ValueError, KeyError) as err:
            raise TargetCheckError(f"{index}: no readable weight_map ({err}); re-export the model") from None
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise TargetCheckError(
            f"{model_dir}: no *.safetensors weights (or model.safetensors.index.json); "
            "point at a complete model folder (save it with safe_serialization)"
        )
    return [name for f in files for name in safetensors_names(f)]


def model_module_names(model_dir: Path) -> set[str]:
    """Modules that own a weight (`a.b.q_proj` for `a.b.q_proj.weight`)."""
    return {name.rsplit(".", 1)[0] for name in model_weight_names(model_dir) if "." in name}


def adapter_modules(adapter_dir: Path) -> list[str]:
    """Module paths the adapter's LoRA weights attach to, from adapter_model.safetensors."""
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        raise TargetCheckError(
            f"{adapter_dir}: no adapter_model.safetensors; point at a PEFT adapter folder "
            "(LLaMA-Factory writes it to the run's output_dir)"
        )
    found = {m.group("module") for k in safetensors_names(weights) if (m := _LORA_KEY.match(k))}
    if not found:
        raise TargetCheckError(f"{weights}: no LoRA weights (lora_A/lora_B) found; is this a LoRA adapter?")
    return sorted(found)


def adapter_config(adapter_dir: Path) -> dict:
    path = adapter_dir / "adapter_config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise TargetCheckError(f"{path}: cannot read it ({err}); point at a PEFT adapter folder") from None


def check_targets(adapter_dir: Path, model_dir: Path, *, tower_lora: bool = False) -> TargetReport:
    """Sort each LoRA module of the adapter into matched / remapped / vision / missing for this model."""
    modules = adapter_modules(adapter_dir)
    model = model_module_names(model_dir)
    by_canonical = {canonical(m): m for m in model}
    report = TargetReport(
        adapter=adapter_dir, model=model_dir, adapter_modules=modules, tower_lora=tower_lora
    )
    for module in modules:
        if module in model:
            report.matched.append(module)
        elif canonical(module) in by_canonical:
            report.remapped.append((module, by_canonical[canonical(module)]))
        else:
            report.missing.append(module)
            continue
        if is_vision(module):
            report.vision.append(module)
    return report
