"""Checks before a training run starts: each failure is one UserError naming the file or key and the fix.

Order matters: the run folder is checked before anything is written, so a refused run changes nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftk import paths
from ftk.console import UserError
from ftk.hf.folder import verify_model_dir
from ftk.merge import base_check
from ftk.recipes import lf_keys
from ftk.recipes.render import Rendered
from ftk.settings import Settings
from ftk.train import nodes

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


@dataclass
class OutputState:
    """What runs/<run-id>/adapter holds: nothing, a finished adapter, checkpoints to resume, or leftovers."""

    kind: str  # fresh | complete | resume | stale
    checkpoint: Path | None = None


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def ok(self, check: str, detail: str) -> None:
        self.rows.append((check, detail))


def output_state(adapter_dir: Path) -> OutputState:
    if not adapter_dir.exists() or not any(adapter_dir.iterdir()):
        return OutputState("fresh")
    if any((adapter_dir / w).is_file() for w in ADAPTER_WEIGHTS):
        return OutputState("complete")
    checkpoints = sorted(
        (int(m.group(1)), p)
        for p in adapter_dir.iterdir()
        if (m := CHECKPOINT.match(p.name)) and p.is_dir() and (p / "trainer_state.json").is_file()
    )
    if checkpoints:
        return OutputState("resume", checkpoints[-1][1])
    return OutputState("stale")


def check_output(s: Settings, overwrite: bool) -> OutputState:
    adapter_dir = s.run_dir / "adapter"
    state = output_state(adapter_dir)
    if state.kind == "complete" and not overwrite:
        raise UserError(
            f"{adapter_dir} already holds a completed adapter (RUN_ID={s.run_id}); use a new RUN_ID "
            "or pass --overwrite (the old adapter is then kept as adapter.prev)"
        )
    return state


def check_resume(s: Settings, checkpoint: Path) -> None:
    """transformers loads a checkpoint's optimizer state onto each process's device, which for several processes on
    CPU is 'cpu:N', a location torch cannot restore: refuse before torchrun starts, with the ways that resume."""
    world = s.nnodes * s.nproc_per_node
    if s.train_gpus == 0 and nodes.uses_torchrun(s) and world > 1:
        raise UserError(
            f"cannot resume {checkpoint} with {world} processes on CPU: transformers restores the optimizer state "
            "onto 'cpu:N', which torch cannot load. Resume it with one process: NPROC_PER_NODE=1 NNODES=1 "
            f"FORCE_TORCHRUN=false scripts/train.sh --set gradient_accumulation_steps=<{world} x the run's> (the same "
            "global batch), or start again with --overwrite"
        )


def set_aside(run_dir: Path) -> Path:
    """Move the old adapter and its run files to runs/<id>/adapter.prev (replacing an older one)."""
    prev = run_dir / "adapter.prev"
    if prev.exists():
        shutil.rmtree(prev)
    (run_dir / "adapter").rename(prev)
    for name in ("train.yaml", "manifest.json", "train.log"):
        if (run_dir / name).is_file():
            (run_dir / name).rename(prev / f"run-{name}")
    return prev


def model_is_multimodal(config: dict[str, Any]) -> bool:
    archs = " ".join(config.get("architectures") or [])
    return "vision_config" in config or "VL" in archs or "ImageTextToText" in archs or "Vision" in archs


def check_model(model_dir: Path, source: str) -> dict[str, Any]:
    """The model folder the recipe trains, complete (the one folder check, ftk.hf.folder), and its config."""
    bad = [f for f in verify_model_dir(model_dir) if f.level == "fail"]
    if bad:
        problems = "; ".join(f"{f.what}: {f.detail}" for f in bad)
        raise UserError(f"{source}: model folder {model_dir}: {problems}; {bad[0].fix}")
    return json.loads((model_dir / "config.json").read_text(encoding="utf-8"))


def check_template(r: Rendered, config: dict[str, Any], model_dir: Path) -> str:
    template = str(r.config["template"])
    info = lf_keys.known()["templates"][template]
    vl_model = model_is_multimodal(config)
    archs = ",".join(config.get("architectures") or ["?"])
    if info["multimodal"] and not vl_model:
        raise UserError(
            f"{r.source('template')}: template '{template}' is for vision-language models but "
            f"{model_dir}/config.json describes a text model ({archs}, no vision_config); "
            "set TEMPLATE to the model's text template"
        )
    if vl_model and not info["multimodal"]:
        raise UserError(
            f"{r.source('template')}: template '{template}' is text-only but {model_dir}/config.json "
            f"describes a vision-language model ({archs}, vision_config); set TEMPLATE to its "
            "vision-language template (e.g. qwen3_vl_nothink, qwen2_vl)"
        )
    return f"{template} ({'vision-language' if vl_model else 'text'}) fits {archs}"


STAGES = ("sft", "pt", "dpo", "rm", "kto")  # stages whose data kind `ftk dataset validate --stage` knows


def dataset_files(dataset_dir: Path, names: list[str]) -> dict[str, list[Path]]:
    """The files of each registered data set; unregistered names are an error with the closest name."""
    info_file = dataset_dir / "dataset_info.json"
    if not info_file.is_file():
        raise UserError(
            f"{info_file} not found: register the data sets first (ftk dataset register) "
            "or point DATASET_DIR to the folder that holds dataset_info.json"
        )
    try:
        registry = json.loads(info_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{info_file}: not valid JSON ({err})") from None
    out: dict[str, list[Path]] = {}
    for name in names:
        if name not in registry:
            close = difflib.get_close_matches(name, list(registry), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"DATASETS: data set '{name}' is not registered in {info_file}; {hint}"
                f"register it (ftk dataset register) or fix DATASETS"
            )
        entry = registry[name]
        files: list[Path] = []
        fname = entry.get("file_name")
        if not fname:
            raise UserError(
                f"{info_file}: data set '{name}' has no file_name (hub or script data sets cannot be "
                "checked offline); register a local file"
            )
        target = dataset_dir / fname
        if target.is_dir():
            files = sorted(p for p in target.rglob("*") if p.is_file())
        elif target.is_file():
            files = [target]
        else:
            raise UserError(f"{info_file}: data set '{name}' names {target}, which does not exist")
        out[name] = files
    return out


def check_start_adapter(r: Rendered, model_dir: Path) -> str:
    """A preference stage on top of an SFT adapter: the adapter must exist and be trained on this base."""
    adapter = paths.resolve(str(r.config["adapter_name_or_path"]))
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(
            f"{r.source('adapter_name_or_path')}: {adapter} holds no adapter_config.json; train the SFT adapter "
            "first (scripts/train.sh with an SFT recipe) or empty SFT_ADAPTER_PATH"
        )
    notes = base_check.check(adapter, model_dir)
    return f"{adapter} (goes on training it; {'; '.join(notes) or 'made for this base'})"


def media_dir(r: Rendered, s: Settings, dataset_dir: Path) -> Path:
    """The folder training resolves media paths against (`media_dir`, default the dataset dir); MEDIA_ROOT must
    agree with it, or validation and training would read different files."""
    folder = paths.resolve(str(r.config["media_dir"])) if r.config.get("media_dir") else dataset_dir
    if str(s.media_root) not in ("", ".") and os.path.realpath(s.path("media_root")) != os.path.realpath(folder):
        raise UserError(
            f"MEDIA_ROOT={s.media_root}, but LLaMA-Factory resolves media paths against {folder} (media_dir, "
            f"default the dataset dir); empty MEDIA_ROOT, or add `media_dir: ${{MEDIA_ROOT}}` to the recipe "
            "(or --set media_dir=...)"
        )
    return folder


def validate_datasets(
    dataset_dir: Path, files: dict[str, list[Path]], media_root: Path, stage: str | None = None
) -> None:
    """Run the project's dataset validator (`ftk dataset validate`) on every registered data set, read with its
    own dataset_info.json entry and checked against the stage (a preference set for dpo, ...)."""
    ftk = paths.venv_bin("toolkit", "ftk")
    cmd = [str(ftk) if ftk.exists() else "ftk", "dataset", "validate", "--media-root", str(media_root)]
    cmd += ["--dataset-dir", str(dataset_dir), "--max-problems", "50"]
    if stage:
        cmd += ["--stage", stage]
    for name, data in files.items():
        proc = subprocess.run([*cmd, name], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            output = (proc.stdout + "\n" + proc.stderr).splitlines()
            # the validator's problem lines are `FILE:LINE: sample N: FIELD: ...`; show the first few
            problems = [
                x.strip()
                for x in output
                if any(x.startswith(str(f)) for f in data) and not x.rstrip().endswith("[warning]")
            ]
            shown = "; ".join(problems[:3]) or (output[-1].strip() if output else f"exit {proc.returncode}")
            raise UserError(
                f"data set '{name}' ({', '.join(str(f) for f in files[name][:2])}) is not valid: "
                f"{shown}; fix it (ftk dataset validate {name})"
            )


def run(r: Rendered, s: Settings, state: OutputState, validate_data: bool = True) -> Report:
    """Model, data sets and template checks on a rendered train recipe."""
    report = Report()
    model_dir = paths.resolve(str(r.config["model_name_or_path"]))
    config = check_model(model_dir, r.source("model_name_or_path"))
    report.ok("model", f"{model_dir} complete ({','.join(config.get('architectures') or ['?'])})")
    dataset_dir = paths.resolve(str(r.config.get("dataset_dir", s.path("dataset_dir"))))
    names = [x for x in str(r.config.get("dataset", "")).replace(" ", ",").split(",") if x]
    if not names:
        raise UserError(f"{r.source('dataset')}: no data set named; set DATASETS in .env")
    files = dataset_files(dataset_dir, names)
    if validate_data:
        stage = str(r.config.get("stage", "sft"))
        validate_datasets(dataset_dir, files, media_dir(r, s, dataset_dir), stage if stage in STAGES else None)
    report.ok("data sets", ", ".join(f"{n} ({sum(f.stat().st_size for f in fs)} bytes)" for n, fs in files.items()))
    report.ok("template", check_template(r, config, model_dir))
    if r.config.get("adapter_name_or_path"):
        report.ok("start adapter", check_start_adapter(r, model_dir))
    if state.kind == "resume":
        report.ok("output", f"resuming from {state.checkpoint}")
    else:
        report.ok("output", f"{s.run_dir / 'adapter'} ({state.kind})")
    return report
