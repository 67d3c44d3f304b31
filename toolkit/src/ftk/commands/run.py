"""`ftk run <stage>`: the one implementation of each stage (ftk.stages.<stage>: its doctor checks, then the tool).
scripts/<stage>.sh and the compose services exec it and keep what bash is right for (pid files, waiting)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ftk.console import EXIT_USAGE, UserError, console
from ftk.settings import Settings, get_settings
from ftk.stages import download as download_stage
from ftk.stages import gateway as gateway_stage
from ftk.stages import merge as merge_stage
from ftk.stages import monitor as monitor_stage
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


RenderOnly = Annotated[bool, typer.Option("--render-only", help="Render and check the configuration, start nothing.")]
Prepare = Annotated[
    bool, typer.Option("--prepare", help="Render, check, and check that it could start (ports); start nothing.")
]


Mode = Literal["render", "prepare", "foreground"]  # the same for every stage that starts a server


def _mode(render_only: bool, prepare: bool) -> Mode:
    if render_only and prepare:
        raise UserError("--render-only and --prepare exclude each other; give one", EXIT_USAGE)
    return "render" if render_only else "prepare" if prepare else "foreground"


@run_app.command("gateway")
def gateway(render_only: RenderOnly = False, prepare: Prepare = False) -> None:
    """The nginx gateway: its configuration from the settings, checked, then nginx in the foreground.

    Renders docker/nginx/templates, the API key map and vLLM's key into GATEWAY_PREFIX/conf and checks them with
    nginx -t. scripts/gateway.sh makes the TLS certificate first and runs --daemon, --stop and --reload around it.
    """
    gateway_stage.run(get_settings(), _mode(render_only, prepare))


@run_app.command("monitor")
def monitor(
    render_only: RenderOnly = False,
    prepare: Prepare = False,
    rules_dir: Annotated[
        Path | None, typer.Option(help="Alert and recording rules (default: docker/prometheus/rules).")
    ] = None,
) -> None:
    """Prometheus: its configuration from the settings, checked, then Prometheus in the foreground.

    Renders docker/prometheus/prometheus.yml.template into MONITOR_DIR and checks it (and the rules) with promtool.
    scripts/monitor.sh runs --daemon and --stop around it.
    """
    monitor_stage.run(get_settings(), _mode(render_only, prepare), rules_dir.resolve() if rules_dir else None)


def register(app: typer.Typer) -> None:
    app.add_typer(run_app, name="run")
