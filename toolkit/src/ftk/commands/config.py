"""`ftk config render train|merge`: a recipe filled with the settings, kept in runs/<run-id>/ with the run."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ftk.console import EXIT_USAGE, UserError, console, info
from ftk.files import write_atomic
from ftk.recipes import render as recipes
from ftk.settings import get_settings

config_app = typer.Typer(help="Render LLaMA-Factory recipes with the .env values.", no_args_is_help=True)


@config_app.command("render")
def render(
    kind: str = typer.Argument(..., help="train or merge"),
    recipe: Path = typer.Option(None, "--recipe", help="recipe YAML (default: TRAIN_RECIPE or MERGE_RECIPE)"),
    run_id: str = typer.Option(None, "--run-id", help="run folder runs/<run-id>/ (default: RUN_ID)"),
    sets: list[str] = typer.Option(None, "--set", help="override a LLaMA-Factory key: --set lora_rank=16 (repeat)"),
    output: Path = typer.Option(None, "--output", "-o", help="write here instead of runs/<run-id>/<kind>.yaml"),
    stdout: bool = typer.Option(False, "--stdout", help="print the rendered YAML instead of writing it"),
) -> None:
    """Render a recipe into runs/<run-id>/train.yaml (or merge.yaml); unknown keys name the closest one."""
    if kind not in ("train", "merge"):
        raise UserError(f"unknown recipe kind '{kind}'; use train or merge", EXIT_USAGE)
    s = get_settings()
    if run_id:
        s = s.model_copy(update={"run_id": run_id})
    path = recipe or s.path(f"{kind}_recipe")
    rendered = recipes.render(path, s, kind, recipes.parse_sets(sets or []))
    text = recipes.to_yaml(rendered)
    if stdout:
        sys.stdout.write(text)
        return
    target = output or s.run_dir / f"{kind}.yaml"
    write_atomic(target, text)
    info(f"rendered {path} -> {target}")
    console.print(str(target), markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
