"""`ftk run <stage>`: the one implementation of each stage; scripts/<stage>.sh and the compose services exec it."""

from __future__ import annotations

from pathlib import Path

import typer

from ftk.console import console
from ftk.settings import Settings, get_settings
from ftk.stages import download as download_stage
from ftk.stages import merge as merge_stage
from ftk.stages import serve as serve_stage
from ftk.stages import train as train_stage

run_app = typer.Typer(
    help="Run one pipeline stage: its settings, its checks (ftk doctor --stage X), then the tool.",
    no_args_is_help=True,
)

SETS_HELP = "override a LLaMA-Factory key of the rendered recipe: --set lora_rank=16 (repeatable)"


def _settings(**overrides: object) -> Settings:
    s = get_settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    return s.model_copy(update=update) if update else s


@run_app.command("download")
def download(
    model_id: str = typer.Option(
        None, "--model-id", help="ModelScope id (Org/Name) or a local folder; default MODEL_ID"
    ),
    revision: str = typer.Option(None, "--revision", help="branch, tag or commit; default MODEL_REVISION"),
    offline: bool = typer.Option(
        False, "--offline", help="never touch the network: the cache (ModelScope local_files_only) or the local folder"
    ),
) -> None:
    """Fetch the base model into MODELSCOPE_CACHE (or take a local folder) and verify it: config.json, weights,
    tokenizer, chat template, processor files. Prints the model folder on stdout."""
    path = download_stage.run(get_settings(), model_id, revision, offline)
    console.print(str(path), markup=False, soft_wrap=True)


@run_app.command("train")
def train(
    recipe: Path = typer.Option(None, "--recipe", help="a recipe instead of TRAIN_RECIPE"),
    run_id: str = typer.Option(None, "--run-id", help="a run id instead of RUN_ID (runs/<run-id>/)"),
    sets: list[str] = typer.Option(None, "--set", help=SETS_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a completed adapter (kept as adapter.prev)"),
    preflight_only: bool = typer.Option(
        False, "--preflight-only", help="run the checks, write runs/<run-id>/train.yaml (printed), do not train"
    ),
    no_validate: bool = typer.Option(
        False, "--no-validate-data", help="skip the dataset validator (registered files are still checked)"
    ),
) -> None:
    """LoRA / QLoRA SFT or preference tuning with `llamafactory-cli train`; an interrupted run resumes from its
    last checkpoint; a completed adapter is never overwritten without --overwrite."""
    opts = train_stage.Options(None, tuple(sets or ()), overwrite, validate_data=not no_validate)
    config = train_stage.run(_settings(run_id=run_id, train_recipe=recipe), opts, preflight_only)
    if preflight_only:
        console.print(str(config), markup=False)


@run_app.command("merge")
def merge(
    run_id: str = typer.Option(None, "--run-id", help="a run id instead of RUN_ID"),
    adapter: Path = typer.Option(None, "--adapter", help="the adapter instead of ADAPTER_PATH"),
    output: Path = typer.Option(None, "--output", help="where the merged model goes instead of MERGED_MODEL_PATH"),
    recipe: Path = typer.Option(None, "--recipe", help="a recipe instead of MERGE_RECIPE"),
    sets: list[str] = typer.Option(None, "--set", help=SETS_HELP),
    prompts: int = typer.Option(3, "--prompts", min=1, max=6, help="prompts `ftk merge verify` compares"),
) -> None:
    """Merge the adapter into its base with `llamafactory-cli export`, make it servable, verify it (greedy output
    of merged == base + adapter), then swap it in; the old export is kept as NAME.prev."""
    s = _settings(
        run_id=run_id,
        adapter_path=adapter,
        merged_model_path=output,
        merge_recipe=recipe,
    )
    merge_stage.run(s, merge_stage.Options(None, tuple(sets or ()), prompts))


@run_app.command("serve")
def serve(
    dry_run: bool = typer.Option(False, "--dry-run", help="run the checks and print the vLLM command; start nothing"),
) -> None:
    """vLLM's OpenAI-compatible server for the merged model, or the base with LoRA adapters; the checks first,
    then vLLM replaces this process (so signals reach it)."""
    serve_stage.run(get_settings(), dry_run)


def register(app: typer.Typer) -> None:
    app.add_typer(run_app, name="run")
