"""runs/<run-id>/manifest.json: what a finished training run was made from and what it produced."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from ftk import paths
from ftk.console import UserError
from ftk.files import sha256_file, write_atomic

VERSIONED = ("llamafactory", "transformers", "peft", "trl", "accelerate", "datasets", "torch", "torchvision")


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def _losses(adapter: Path) -> tuple[float | None, float | None, int]:
    """First and last logged training loss, and the step count, from LLaMA-Factory's trainer_log.jsonl."""
    log = adapter / "trainer_log.jsonl"
    losses: list[float] = []
    steps = 0
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec.get("loss"), (int, float)):
                losses.append(float(rec["loss"]))
            steps = max(steps, int(rec.get("current_steps", 0) or 0))
    return (losses[0] if losses else None), (losses[-1] if losses else None), steps


def _datasets(config: dict[str, Any]) -> list[dict[str, Any]]:
    dataset_dir = paths.resolve(str(config.get("dataset_dir", "data")))
    info_file = dataset_dir / "dataset_info.json"
    registry = json.loads(info_file.read_text(encoding="utf-8")) if info_file.is_file() else {}
    out = []
    for name in [x for x in str(config.get("dataset", "")).split(",") if x.strip()]:
        entry = registry.get(name.strip(), {})
        target = dataset_dir / entry.get("file_name", "")
        files = sorted(p for p in target.rglob("*") if p.is_file()) if target.is_dir() else [target]
        out.append(
            {
                "name": name.strip(),
                "formatting": entry.get("formatting", "alpaca"),
                "files": [
                    {"path": str(f), "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files if f.is_file()
                ],
            }
        )
    return out


def _base_model(model_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"path": str(model_dir)}
    manifest = model_dir / "ftk-manifest.json"
    if manifest.is_file():
        out["ftk_manifest_sha256"] = sha256_file(manifest)
    cfg = model_dir / "config.json"
    if cfg.is_file():
        config = json.loads(cfg.read_text(encoding="utf-8"))
        out["architectures"] = config.get("architectures")
        out["config_sha256"] = sha256_file(cfg)
    return out


def build(run_dir: Path, started: float | None = None, resumed_from: str | None = None) -> dict[str, Any]:
    config_file = run_dir / "train.yaml"
    if not config_file.is_file():
        raise UserError(f"{config_file} not found: is {run_dir} a training run folder (scripts/train.sh)?")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    adapter = paths.resolve(str(config["output_dir"]))
    adapter_cfg_file = adapter / "adapter_config.json"
    if not adapter_cfg_file.is_file():
        raise UserError(
            f"{adapter_cfg_file} not found: the training did not finish; run scripts/train.sh again "
            "(it resumes from the last checkpoint)"
        )
    adapter_cfg = json.loads(adapter_cfg_file.read_text(encoding="utf-8"))
    first, last, steps = _losses(adapter)
    results_file = adapter / "train_results.json"
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else {}
    now = datetime.now(timezone.utc)
    targets = adapter_cfg.get("target_modules")
    return {
        "run_id": run_dir.name,
        "finished_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round(now.timestamp() - started, 1) if started else None,
        "resumed_from": resumed_from,
        "base_model": _base_model(paths.resolve(str(config["model_name_or_path"]))),
        "datasets": _datasets(config),
        "template": config.get("template"),
        "default_system": config.get("default_system"),
        "config_file": str(config_file),
        "config": config,
        "adapter": {
            "path": str(adapter),
            "rank": adapter_cfg.get("r"),
            "alpha": adapter_cfg.get("lora_alpha"),
            "target_modules": sorted(targets) if isinstance(targets, list) else targets,
            "base_model_name_or_path": adapter_cfg.get("base_model_name_or_path"),
            "files": {p.name: sha256_file(p) for p in sorted(adapter.glob("adapter_model.*"))},
        },
        "loss": {"first": first, "final": last, "steps": steps, "train_loss": results.get("train_loss")},
        "loss_plot": str(adapter / "training_loss.png") if (adapter / "training_loss.png").is_file() else None,
        "metrics": results,
        "versions": _versions(),
    }


def write(run_dir: Path, started: float | None = None, resumed_from: str | None = None) -> Path:
    data = build(run_dir, started, resumed_from)
    target = run_dir / "manifest.json"
    write_atomic(target, json.dumps(data, indent=2) + "\n")
    return target
