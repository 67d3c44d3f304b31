"""The merge stage: checks, `llamafactory-cli export` into a hidden folder, made servable and verified, then swapped
in (the old export kept as NAME.prev). An interrupted or failed merge leaves NAME untouched."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ftk.console import UserError, info, warn
from ftk.files import write_atomic
from ftk.merge import finish
from ftk.recipes import render as recipes
from ftk.settings import Settings
from ftk.stages import checks
from ftk.stages.process import run_logged, run_quiet, venv_tool


@dataclass(frozen=True)
class Options:
    recipe: Path | None = None
    sets: tuple[str, ...] = ()
    prompts: int = 3


def recover_swap(target: Path, prev: Path) -> None:
    """A merge killed between its two renames left only PREV: put it back."""
    if not target.exists() and prev.is_dir():
        prev.rename(target)
        warn(f"an earlier merge was interrupted while swapping folders; restored {target} from {prev}")


def export_dtype(folder: Path) -> str:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return str(config.get("torch_dtype") or config.get("dtype") or "float32")


def export(s: Settings, opts: Options, partial: Path) -> Path:
    config = s.run_dir / "merge.yaml"
    rendered = recipes.render(opts.recipe or s.path("merge_recipe"), s, "merge", recipes.parse_sets(list(opts.sets)))
    write_atomic(config, recipes.to_yaml(rendered))
    shutil.rmtree(partial, ignore_errors=True)
    log = s.run_dir / "merge.log"
    target = s.resolved_merged_path
    info(f"export: llamafactory-cli export {config}; log {log}")
    if run_logged([venv_tool("train", "llamafactory-cli"), "export", str(config)], log) != 0:
        raise UserError(f"export failed (log: {log}); {target} is untouched")
    if not (partial / "config.json").is_file():
        raise UserError(f"export wrote no {partial}/config.json (log: {log}); {target} is untouched")
    return config


def verify(s: Settings, opts: Options, partial: Path) -> None:
    dtype = export_dtype(partial)
    info(f"verify: greedy output of the export vs base + adapter ({opts.prompts} prompts, {dtype})")
    cmd = [venv_tool("train", "ftk"), "merge", "verify", str(partial), "--base", str(s.base_model_path)]
    cmd += ["--adapter", str(s.resolved_adapter_path), "--prompts", str(opts.prompts), "--dtype", dtype]
    if run_quiet(cmd) != 0:
        raise UserError(
            f"verification failed; the new export stays in {partial} for inspection and {s.resolved_merged_path} "
            "is untouched"
        )


def swap_in(partial: Path, target: Path, prev: Path) -> None:
    if target.exists():
        shutil.rmtree(prev, ignore_errors=True)
        target.rename(prev)
        info(f"previous export kept as {prev}")
    partial.rename(target)


def run(s: Settings, opts: Options) -> Path:
    base, adapter, target = s.base_model_path, s.resolved_adapter_path, s.resolved_merged_path
    partial = recipes.export_dir_for(target)  # where the rendered recipe tells LLaMA-Factory to export
    prev = target.with_name(f"{target.name}.prev")
    info(
        f"merge: adapter {adapter} into base {base} -> {target} (export in {partial}, verified before it "
        f"replaces {target})"
    )
    recover_swap(target, prev)
    checks.require(s, "merge")
    config = export(s, opts, partial)
    info(f"making {partial} servable (files from the base, tokenizer/config fixes)")
    try:
        for action in finish.make_servable(partial, base):
            info(action)
    except FileNotFoundError as err:
        raise UserError(f"could not finish {partial}: {err}; {target} is untouched") from None
    verify(s, opts, partial)
    swap_in(partial, target, prev)
    info(f"merged model ready: {target} (export config {config})")
    return target
