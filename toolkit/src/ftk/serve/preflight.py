"""Every check on the model and adapters before vLLM starts: one line per problem, naming value and fix.

The host checks (visible GPUs >= TENSOR_PARALLEL_SIZE, port free) are the serve stage's doctor checks
(ftk.doctor.checks_serve); `ftk run serve` runs them all before vLLM starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ftk.hf.folder import problems as folder_problems
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import registry
from ftk.serve.adapters import Adapter, check_adapter, check_names, parse_lora_modules, vllm_rank
from ftk.settings import Settings


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model: ModelInfo | None = None
    adapters: list[Adapter] = field(default_factory=list)
    max_lora_rank: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_model_folder(path: Path, setting: str = "SERVE_MODEL_PATH") -> list[str]:
    """The served folder is a complete model (the one folder check, ftk.hf.folder), each problem naming SETTING."""
    if not path.is_dir():
        return [
            f"model folder {path} does not exist ({setting}, or the merged/base model when empty); run the "
            "download or merge stage, or fix the path"
        ]
    return [f"{problem} ({setting})" for problem in folder_problems(path)]


def effective_max_rank(settings: Settings, adapters: list[Adapter]) -> int:
    """MAX_LORA_RANK, or (0) the largest adapter rank rounded up to a rank vLLM accepts (at least 8)."""
    if settings.max_lora_rank:
        return settings.max_lora_rank
    return vllm_rank(max([8, *(a.rank for a in adapters)]))


def run(settings: Settings) -> Report:
    report = Report()
    path = settings.resolved_serve_model_path
    report.problems += check_model_folder(path)
    if report.problems and not (path / "config.json").is_file():
        return report
    try:
        model = ModelInfo.load(path)
    except ValueError as err:
        report.problems.append(f"{err}; fix or re-download the model")
        return report
    report.model = model

    positions = model.max_position_embeddings
    if positions and settings.max_model_len > positions:
        report.problems.append(
            f"MAX_MODEL_LEN={settings.max_model_len} is above the model's max_position_embeddings "
            f"{positions} ({path}/config.json); set MAX_MODEL_LEN={positions} or less"
        )

    if settings.limit_mm_per_prompt:
        try:
            limits = json.loads(settings.limit_mm_per_prompt)
            if not isinstance(limits, dict):
                raise ValueError
        except ValueError:
            report.problems.append(
                f"LIMIT_MM_PER_PROMPT={settings.limit_mm_per_prompt!r} is not a JSON object; "
                """write e.g. {"image":1,"video":0}"""
            )
    elif model.is_vision_language:
        report.warnings.append(
            "LIMIT_MM_PER_PROMPT is empty for a vision-language model; vLLM reserves memory for "
            """its default limits (OOM at start-up on small GPUs): set e.g. {"image":1,"video":0}"""
        )

    pairs = parse_lora_modules(settings.lora_modules)
    try:  # the adapters `ftk lora load` registered: a started or restarted vLLM serves them too
        registered = registry.read(settings.resolved_lora_registry)
    except ValueError as err:
        report.problems.append(str(err))
        registered = []
    pairs += [(e.name, Path(e.path)) for e in registered if e.name not in {name for name, _ in pairs}]
    report.problems += check_names([name for name, _ in pairs], settings.served_model_name)
    for name, adapter_path in pairs:
        try:
            report.adapters.append(Adapter.load(name, adapter_path))
        except ValueError as err:
            report.problems.append(str(err))
    report.max_lora_rank = effective_max_rank(settings, report.adapters)
    tower_lora = "--enable-tower-connector-lora" in settings.vllm_extra_args
    for adapter in report.adapters:
        problems, warnings = check_adapter(adapter, model, report.max_lora_rank, tower_lora=tower_lora)
        report.problems += problems
        report.warnings += warnings
    return report
