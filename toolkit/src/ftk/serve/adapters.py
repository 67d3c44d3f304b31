"""LoRA adapters checked against the model that serves them, from files only (no model load).

The checks catch the traps that otherwise show up as a start-up error, an HTTP 500 at runtime load, or worse
an adapter that loads and does nothing: rank above ``--max-lora-rank``, an adapter trained on another base,
target modules the served model does not have (vision-language prefix differences), duplicate names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ftk import paths
from ftk.hf.modelinfo import ModelInfo, read_json
from ftk.hf.target_modules import TargetReport, classify
from ftk.hf.tensors import TensorInfo, read_tensors
from ftk.settings import split_list

# Ranks vLLM accepts for --max-lora-rank (vllm/config/lora.py); the planned rank is rounded up to one of them.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
_LORA_KEY = re.compile(
    r"^(?:base_model\.model\.)?(?P<module>.+?)\.(?:lora_A|lora_B|lora_embedding_A|lora_embedding_B)"
    r"(?:\.[A-Za-z0-9_]+)?(?:\.weight)?$"
)


@dataclass
class Adapter:
    name: str
    path: Path
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, path: Path) -> Adapter:
        cfg = path / "adapter_config.json"
        if not path.is_dir():
            raise ValueError(
                f"adapter '{name}': folder {path} does not exist; train it (scripts/train.sh) or fix "
                "the path in LORA_MODULES"
            )
        if not cfg.is_file():
            raise ValueError(
                f"adapter '{name}': {path} has no adapter_config.json; it is not a PEFT LoRA adapter "
                "(point LORA_MODULES at the folder the trainer wrote)"
            )
        return cls(name=name, path=path, config=read_json(cfg))

    @property
    def rank(self) -> int:
        r = int(self.config.get("r") or 0)
        patterns = self.config.get("rank_pattern") or {}
        return max([r, *(int(v) for v in patterns.values())])

    @property
    def base_model(self) -> str:
        return str(self.config.get("base_model_name_or_path") or "")

    @cached_property
    def tensors(self) -> dict[str, TensorInfo]:
        return read_tensors(self.path)

    @cached_property
    def lora_tensors(self) -> dict[str, dict[str, TensorInfo]]:
        """module name in the base model -> {"A": ..., "B": ...}."""
        out: dict[str, dict[str, TensorInfo]] = {}
        for key, info in self.tensors.items():
            m = _LORA_KEY.match(key)
            if m:
                side = "A" if ".lora_A" in key or ".lora_embedding_A" in key else "B"
                out.setdefault(m.group("module"), {})[side] = info
        return out

    @property
    def target_modules(self) -> list[str] | str:
        value = self.config.get("target_modules") or []
        return value if isinstance(value, str) else list(value)


def parse_lora_modules(value: str) -> list[tuple[str, Path]]:
    """LORA_MODULES (`name=path` pairs, space/comma separated), paths resolved from the project home."""
    pairs = []
    for item in split_list(value):
        name, _, path = item.partition("=")
        pairs.append((name.strip(), paths.resolve(path.strip())))
    return pairs


def vllm_rank(rank: int) -> int:
    """The smallest --max-lora-rank vLLM accepts that holds `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    return rank


def check_names(names: list[str], served_name: str, setting: str = "LORA_MODULES") -> list[str]:
    problems = []
    seen: set[str] = set()
    for name in names:
        if name == served_name:
            problems.append(
                f"{setting}: adapter name '{name}' equals SERVED_MODEL_NAME; requests naming it would "
                "get the base model: rename the adapter or SERVED_MODEL_NAME"
            )
        elif name in seen:
            problems.append(f"{setting}: adapter name '{name}' is used twice; give each adapter its own name")
        seen.add(name)
    return problems


def check_rank(adapter: Adapter, max_rank: int, setting: str = "MAX_LORA_RANK") -> list[str]:
    if adapter.rank > max_rank:
        return [
            f"adapter '{adapter.name}' has rank r={adapter.rank} (adapter_config.json) above the max LoRA "
            f"rank {max_rank} ({setting}); set {setting}={vllm_rank(adapter.rank)} or 0 (= the largest "
            "adapter rank), or retrain with a smaller LORA_RANK"
        ]
    return []


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_base(adapter: Adapter, model: ModelInfo) -> list[str]:
    """The adapter was made for this model: same folder, or a copy with the same architecture and sizes."""
    recorded = adapter.base_model
    if not recorded:
        return []
    candidate = paths.resolve(recorded)
    if _same_folder(candidate, model.path) or not (candidate / "config.json").is_file():
        # Same folder, or a hub id / moved folder: the tensor shape check in check_targets decides.
        return []
    try:
        other = ModelInfo.load(candidate)
    except ValueError:
        return []
    ours, theirs = model.identity(), other.identity()
    diffs = [f"{k} {theirs[k]} vs {ours[k]}" for k in ours if ours[k] != theirs[k]]
    if diffs:
        return [
            f"adapter '{adapter.name}' was made for base model {recorded} (adapter_config.json "
            f"base_model_name_or_path), which differs from the served model {model.path}: "
            f"{'; '.join(diffs)}; serve that base (SERVE_MODEL_PATH) or train the adapter on this model"
        ]
    return []


def check_targets(adapter: Adapter, model: ModelInfo, tower_lora: bool = False) -> tuple[list[str], list[str]]:
    """(problems, warnings): adapter modules missing from the served model, ignored, or of other shapes.

    The module comparison is VL-aware (ftk.hf.target_modules): language-model prefix layouts vLLM maps are a
    warning, vision-tower modules vLLM ignores a warning (an error when nothing else is left).
    """
    label = f"adapter '{adapter.name}'"
    lora = adapter.lora_tensors
    if not lora:
        return [
            f"{label}: no LoRA weights (lora_A/lora_B) in {adapter.path}/*.safetensors; the adapter is empty "
            "or saved as .bin, save it again with safetensors"
        ], []
    modules = model.modules
    if not modules:
        return [], [f"model {model.path} has no safetensors weights; target modules of {label} not compared"]
    report = classify(lora, modules, tower_lora=tower_lora)
    problems: list[str] = []
    if report.missing:
        problems.append(
            f"{label}: {len(report.missing)} of {len(lora)} target modules do not exist in the served model "
            f"{model.path} (e.g. {report.missing[0]}); vLLM would load the adapter and silently not apply "
            "it: serve the model it was trained on, or retrain it on this one"
        )
    problems += report.errors(label)
    bad_shapes = []
    for module, model_module in sorted(report.model_name.items()):
        weight = model.tensors.get(f"{model_module}.weight")
        if weight is None or len(weight.shape) != 2 or "embed" in module:
            continue
        out_f, in_f = weight.shape
        a, b = lora[module].get("A"), lora[module].get("B")
        if (a is not None and a.shape[-1] != in_f) or (b is not None and b.shape[0] != out_f):
            bad_shapes.append(module)
    if bad_shapes:
        problems.append(
            f"{label}: LoRA shapes do not fit the served model's weights at {len(bad_shapes)} modules "
            f"(e.g. {bad_shapes[0]}); the adapter was trained on a different base model: serve that base"
        )
    return problems, report.warnings(label)


def check_adapter(
    adapter: Adapter,
    model: ModelInfo,
    max_rank: int,
    rank_setting: str = "MAX_LORA_RANK",
    tower_lora: bool = False,
) -> tuple[list[str], list[str]]:
    """Every check of one adapter against the served model: (problems, warnings)."""
    problems = check_rank(adapter, max_rank, rank_setting) + check_base(adapter, model)
    target_problems, warnings = check_targets(adapter, model, tower_lora)
    return problems + target_problems, warnings


def classify_folders(adapter_dir: Path, model_dir: Path, *, tower_lora: bool = False) -> TargetReport:
    """Read the adapter's LoRA weights and the model's weight names (headers only) and classify them."""
    adapter = Adapter.load(adapter_dir.name, adapter_dir)
    model = ModelInfo.load(model_dir)
    return classify(adapter.lora_tensors, model.modules, tower_lora=tower_lora)
