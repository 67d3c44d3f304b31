"""The train stage: checks, the rendered recipe (runs/<RUN_ID>/train.yaml), `llamafactory-cli train`, a manifest.

LLaMA-Factory and the template comparison run in the train venv (torch, transformers); everything else here.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from ftk import paths
from ftk.console import UserError, err_console, info, warn
from ftk.files import write_atomic
from ftk.recipes import render as recipes
from ftk.settings import Settings
from ftk.stages import checks
from ftk.stages.process import run_logged, run_quiet, venv_tool
from ftk.train import nodes
from ftk.train import preflight as train_checks
from ftk.train.template_drift import EXIT_DRIFT, EXIT_SAME

TORCHRUN_KEYS = ("NNODES", "NODE_RANK", "NPROC_PER_NODE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Options:
    recipe: Path | None = None
    sets: tuple[str, ...] = ()
    overwrite: bool = False
    validate_data: bool = True


def prepare(s: Settings, opts: Options) -> tuple[Path, train_checks.OutputState]:
    """The checks (nothing is written when one fails), then runs/<RUN_ID>/train.yaml; an old adapter set aside."""
    info(
        f"train run {s.run_id}: recipe {opts.recipe or s.path('train_recipe')}, model {s.base_model_path}, "
        f"data sets {s.datasets} -> {s.run_dir}"
    )
    checks.require(s, "train")
    state = train_checks.check_output(s, opts.overwrite)
    extra = recipes.parse_sets(list(opts.sets))
    if str(s.deepspeed_config) not in ("", "."):
        extra.setdefault("deepspeed", str(deepspeed_config(s)))
    if state.kind == "resume" and not opts.overwrite:
        train_checks.check_resume(s, state.checkpoint)
        extra.setdefault("resume_from_checkpoint", str(state.checkpoint))
    rendered = recipes.render(opts.recipe or s.path("train_recipe"), s, "train", extra)
    report = train_checks.run(rendered, s, state, validate_data=opts.validate_data)
    if nodes.multi_node(s):
        data_dir = paths.resolve(str(rendered.config.get("dataset_dir", s.path("dataset_dir"))))
        files = train_checks.dataset_files(data_dir, s.dataset_names)
        report.ok("nodes", nodes.sync(s, rendered.config, files))
    if s.node_rank > 0:
        # node 0 owns the run folder (adapter, train.yaml, manifest); this node only reads its own config
        target = s.run_dir / f"train.node{s.node_rank}.yaml"
        write_atomic(target, recipes.to_yaml(rendered))
        report.ok("config", str(target))
        print_report(s, report)
        return target, state
    if state.kind == "complete" or (state.kind in ("stale", "resume") and opts.overwrite):
        info(f"the previous adapter of run {s.run_id} is kept in {train_checks.set_aside(s.run_dir)}")
    elif state.kind == "stale":
        prev = train_checks.set_aside(s.run_dir)
        info(f"{s.run_dir / 'adapter'} held no checkpoint to resume from; its files were moved to {prev}")
    target = s.run_dir / "train.yaml"
    write_atomic(target, recipes.to_yaml(rendered))
    report.ok("config", str(target))
    print_report(s, report)
    if state.kind == "resume" and not opts.overwrite:
        info(f"resuming the interrupted run from {state.checkpoint}")
    return target, state


def print_report(s: Settings, report: train_checks.Report) -> None:
    table = Table(title=f"train preflight: run {s.run_id}", show_header=True)
    table.add_column("check")
    table.add_column("result")
    for check, detail in report.rows:
        table.add_row(f"[green]ok[/] {check}", detail)
    err_console.print(table)


def deepspeed_config(s: Settings) -> Path:
    """DEEPSPEED_CONFIG, checked: a JSON object with a ZeRO stage (DeepSpeed itself runs only on GPU hosts)."""
    path = s.path("deepspeed_config")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(
            f"DEEPSPEED_CONFIG={s.deepspeed_config}: {err}; point it at a JSON file such as "
            "configs/deepspeed/zero2.json or zero3.json, or leave it empty"
        ) from None
    stage = config.get("zero_optimization", {}).get("stage") if isinstance(config, dict) else None
    if stage not in (0, 1, 2, 3):
        raise UserError(f"DEEPSPEED_CONFIG={s.deepspeed_config}: zero_optimization.stage must be 0, 1, 2 or 3")
    return path


def check_template_drift(config: Path) -> None:
    """Warn (with a diff) when LLaMA-Factory's template and the model's chat template render other prompts;
    training goes on, since some models are meant to be served with the trained template."""
    rc = run_quiet([venv_tool("train", "python"), "-m", "ftk.train.template_drift", str(config)])
    if rc == EXIT_DRIFT:
        warn(
            "template drift (above): the served model's chat template differs from what it is trained on; fix the "
            "recipe's template/default_system unless you serve with the trained template"
        )
    elif rc != EXIT_SAME:
        warn(f"the template drift check could not run (exit {rc}); training goes on")


def launcher_env(s: Settings) -> dict[str, str]:
    """LLaMA-Factory reads these to launch torchrun across GPUs and nodes."""
    env = {k: v for k, v in os.environ.items() if k != "FORCE_TORCHRUN"}
    if nodes.uses_torchrun(s):
        env["FORCE_TORCHRUN"] = "1"
    env.update({"NNODES": str(s.nnodes), "NODE_RANK": str(s.node_rank), "NPROC_PER_NODE": str(s.nproc_per_node)})
    env.update({"MASTER_ADDR": s.master_addr, "MASTER_PORT": str(s.master_port)})
    return env


def train(s: Settings, config: Path, resumed: Path | None) -> None:
    log = s.run_dir / ("train.log" if s.node_rank == 0 else f"train.node{s.node_rank}.log")
    info(f"training: llamafactory-cli train {config}{f' (resuming from {resumed})' if resumed else ''}; log {log}")
    started = time.time()
    cli = venv_tool("train", "llamafactory-cli")
    env = launcher_env(s)
    # LLaMA-Factory's launcher runs `torchrun` from PATH: the one next to llamafactory-cli (the train venv)
    env["PATH"] = os.pathsep.join([str(Path(cli).parent), env.get("PATH", os.defpath)])
    if run_logged([cli, "train", str(config)], log, env) != 0:
        raise UserError(
            f"training failed (log: {log}); fix the cause and run scripts/train.sh again: it resumes from the "
            "last checkpoint"
        )
    if s.node_rank > 0:
        info(f"node {s.node_rank} done; node 0 saves the adapter and the manifest of run {s.run_id}")
        return
    adapter = s.run_dir / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"training ended without {adapter}/adapter_config.json; see {log}")
    if not (adapter / "training_loss.png").is_file():
        warn(f"no loss plot in {adapter} (plot_loss: true in the recipe writes training_loss.png)")
    info(f"manifest: {s.run_dir / 'manifest.json'}")
    manifest = [venv_tool("train", "ftk"), "train", "manifest", str(s.run_dir), "--started", str(started)]
    if run_quiet(manifest + (["--resumed-from", str(resumed)] if resumed else [])) != 0:
        raise UserError(f"could not write {s.run_dir / 'manifest.json'}")
    info(
        f"run {s.run_id} done: adapter {adapter}, loss plot {adapter / 'training_loss.png'}, manifest "
        f"{s.run_dir / 'manifest.json'}"
    )


def run(s: Settings, opts: Options, preflight_only: bool = False) -> Path:
    config, state = prepare(s, opts)
    check_template_drift(config)
    if preflight_only:
        info(f"preflight passed; config in {config} (not training: --preflight-only)")
        return config
    resumed = state.checkpoint if state.kind == "resume" and not opts.overwrite else None
    train(s, config, resumed)
    return config
