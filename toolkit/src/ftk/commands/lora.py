"""`ftk lora list|load|unload`: LoRA adapters on the running vLLM server (runtime updating must be enabled).

Before loading, the same checks as the serve preflight run locally: rank vs the server's max LoRA rank, the
adapter made for the served model, its target modules present in that model, the name free.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ftk import paths
from ftk.console import console, fail, info, print_error, warn
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import command as serve_command
from ftk.serve.adapters import Adapter, check_adapter, check_names, check_rank
from ftk.serve.client import ServerError, VllmClient, read_key
from ftk.settings import get_settings

lora_app = typer.Typer(help="List, load and unload LoRA adapters on the running vLLM server.", no_args_is_help=True)

BaseUrl = typer.Option("", "--base-url", help="vLLM URL (default http://VLLM_HOST:VLLM_PORT).")
KeyFile = typer.Option(None, "--api-key-file", help="Key file (default VLLM_API_KEY_FILE).")


def _client(base_url: str, key_file: Path | None) -> VllmClient:
    s = get_settings()
    key = read_key(paths.resolve(key_file) if key_file else s.path("vllm_api_key_file"))
    return VllmClient(base_url or serve_command.base_url(s), key)


def _models(client: VllmClient) -> list[dict]:
    try:
        return client.models()
    except ServerError as err:
        fail(str(err))


@lora_app.command("list")
def list_cmd(base_url: str = BaseUrl, api_key_file: Path = KeyFile) -> None:
    """The models the server answers to: the base/merged model and every adapter loaded."""
    client = _client(base_url, api_key_file)
    table = Table(title=f"Models on {client.base_url}")
    for col in ("name", "kind", "parent", "path"):
        table.add_column(col)
    for m in _models(client):
        kind = "adapter" if m.get("parent") else "model"
        table.add_row(m.get("id", ""), kind, m.get("parent") or "", m.get("root") or "")
    console.print(table)


@lora_app.command("load")
def load_cmd(
    name: str = typer.Argument(..., help="Name clients will send as `model`."),
    path: Path = typer.Argument(..., help="Adapter folder (as the server sees it)."),
    base_url: str = BaseUrl,
    api_key_file: Path = KeyFile,
    max_lora_rank: int = typer.Option(
        0,
        "--max-lora-rank",
        help="The server's --max-lora-rank (default: from runs/serve/state-<port>.json that scripts/serve.sh writes).",
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the adapter checks first."),
) -> None:
    """Load an adapter at runtime (POST /v1/load_lora_adapter) after the preflight's adapter checks."""
    s = get_settings()
    client = _client(base_url, api_key_file)
    adapter_path = paths.resolve(path)
    if check:
        models = _models(client)
        base = next((m for m in models if not m.get("parent")), {})
        state = serve_command.read_state(s)
        rank_limit = max_lora_rank or int(state.get("max_lora_rank") or 0)
        if not rank_limit:
            fail(
                "the server's max LoRA rank is unknown (no runs/serve/state file, or the server was started "
                "without --enable-lora); pass --max-lora-rank N, or restart scripts/serve.sh with "
                "ALLOW_RUNTIME_LORA=true"
            )
        problems = check_names(
            [*(m.get("id", "") for m in models if m.get("parent")), name],
            base.get("id", s.served_model_name),
            setting="adapter name",
        )
        problems = [
            f"'{name}' is already loaded; unload it first (ftk lora unload {name}) or pick another name"
            if "used twice" in p
            else p
            for p in problems
        ]
        try:
            adapter = Adapter.load(name, adapter_path)
        except ValueError as err:
            fail(str(err))
        model_path = Path(state.get("model_path") or base.get("root") or s.resolved_serve_model_path)
        if (model_path / "config.json").is_file():
            more, warnings = check_adapter(
                adapter,
                ModelInfo.load(model_path),
                rank_limit,
                rank_setting="MAX_LORA_RANK (the server's --max-lora-rank)",
            )
            problems += more
            for w in warnings:
                warn(w)
        else:
            warn(f"served model folder {model_path} not readable here; base-model and target-module checks skipped")
            problems += check_rank(adapter, rank_limit)
        if problems:
            for p in problems[:-1]:
                print_error(p)
            fail(problems[-1])
    try:
        client.load_lora(name, str(adapter_path))
    except ServerError as err:
        fail(str(err))
    info(f"loaded adapter '{name}' from {adapter_path}; clients send model=\"{name}\"")


@lora_app.command("unload")
def unload_cmd(
    name: str = typer.Argument(..., help="Adapter name to unload."),
    base_url: str = BaseUrl,
    api_key_file: Path = KeyFile,
) -> None:
    """Unload an adapter at runtime (POST /v1/unload_lora_adapter)."""
    client = _client(base_url, api_key_file)
    try:
        client.unload_lora(name)
    except ServerError as err:
        fail(str(err))
    info(f"unloaded adapter '{name}'")


def register(app: typer.Typer) -> None:
    app.add_typer(lora_app, name="lora")
