"""Compare a LoRA adapter's modules with the module names of the model it will be served on (VL-aware).

A LoRA whose module names do not exist in the served model loads without error and does nothing (FIELD.md).
Two vision-language cases need more than an exact name comparison:
- the adapter targets the vision tower or projector, which vLLM ignores unless started with
  `--enable-tower-connector-lora` (and only for models that support it): a warning, or an error when the
  adapter has nothing else (it would change nothing);
- the language-model prefix differs: PEFT names modules after the training framework's model class
  (`model.language_model.layers.N...` for Qwen-VL in transformers >= 4.52) while the model folder may store
  the older layout (`model.layers.N...`, `visual...`; transformers 5 still saves Qwen2-VL so). vLLM's Qwen-VL
  loaders map both layouts to the same modules, so this is a warning (other loaders may not map it), not a
  missing module.

Everything comes from file headers (adapter_config.json, safetensors headers), never from loading weights. The
serve preflight (`ftk.serve.adapters.check_targets`) uses `classify` for its target-module check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Module-path markers of vision towers and multimodal projectors across common VL architectures.
VISION_MARKERS = ("visual.", "vision_tower.", "vision_model.", "vision_encoder.", "multi_modal_projector.")
# Prefixes that name the same language-model (or vision) modules in different layouts -> one canonical form.
_PREFIX_ALIASES = (
    ("model.language_model.model.", "model."),
    ("model.language_model.", "model."),
    ("language_model.model.", "model."),
    ("language_model.lm_head.", "lm_head."),
    ("model.visual.", "visual."),
)


def canonical(module: str) -> str:
    """The name with its layout prefix normalised (`model.language_model.layers.0` -> `model.layers.0`)."""
    for old, new in _PREFIX_ALIASES:
        if module.startswith(old):
            return new + module[len(old) :]
    return module


def is_vision(module: str) -> bool:
    name = canonical(module)
    return any(name.startswith(m) or f".{m}" in name for m in VISION_MARKERS)


@dataclass
class TargetReport:
    """Each LoRA module of an adapter sorted by how the served model will treat it."""

    adapter_modules: list[str]
    matched: list[str] = field(default_factory=list)  # the same name exists in the model
    remapped: list[tuple[str, str]] = field(default_factory=list)  # (adapter name, model name): prefix differs
    vision: list[str] = field(default_factory=list)  # in the vision tower / projector (matched or remapped)
    missing: list[str] = field(default_factory=list)  # no such module in the model under any known layout
    tower_lora: bool = False  # the server applies LoRA to the vision tower too

    @property
    def model_name(self) -> dict[str, str]:
        """Adapter module -> the model's name for it (for shape checks)."""
        return {**{m: m for m in self.matched}, **dict(self.remapped)}

    @property
    def language_modules(self) -> list[str]:
        return [m for m in self.model_name if not is_vision(m)]

    def errors(self, label: str = "adapter") -> list[str]:
        if self.missing or not self.adapter_modules or self.language_modules or self.tower_lora:
            return []  # missing modules are reported by the caller with its own wording
        return [
            f"{label}: every LoRA module is in the vision tower/projector (e.g. {self.vision[0]}), which "
            "vLLM ignores without --enable-tower-connector-lora: the adapter would change nothing; "
            "retrain with freeze_vision_tower: true and lora_target: all, or add "
            "--enable-tower-connector-lora to VLLM_EXTRA_ARGS"
        ]

    def warnings(self, label: str = "adapter") -> list[str]:
        out = []
        if self.vision and self.language_modules and not self.tower_lora:
            out.append(
                f"{label}: {len(self.vision)} LoRA module(s) are in the vision tower/projector "
                f"(e.g. {self.vision[0]}); vLLM applies LoRA to the language model only unless started with "
                "--enable-tower-connector-lora, so these are ignored"
            )
        if self.remapped:
            theirs, ours = self.remapped[0]
            out.append(
                f"{label}: {len(self.remapped)} LoRA module name(s) use another layout than the model folder "
                f"(adapter {theirs}, model {ours}); vLLM maps the Qwen-VL layouts, other loaders may not"
            )
        return out


def classify(adapter_modules: Iterable[str], model_modules: set[str], *, tower_lora: bool = False) -> TargetReport:
    """Sort the adapter's LoRA modules into matched / remapped / vision / missing for these model modules."""
    modules = sorted(set(adapter_modules))
    by_canonical = {canonical(m): m for m in model_modules}
    report = TargetReport(adapter_modules=modules, tower_lora=tower_lora)
    for module in modules:
        if module in model_modules:
            report.matched.append(module)
        elif canonical(module) in by_canonical:
            report.remapped.append((module, by_canonical[canonical(module)]))
        else:
            report.missing.append(module)
            continue
        if is_vision(module):
            report.vision.append(module)
    return report
