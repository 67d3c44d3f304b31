"""`ftk lora list|load|unload|sync`: LoRA adapters on every running vLLM replica (runtime updating enabled).

Before loading, the same checks as the serve preflight run locally: rank vs the server's max LoRA rank, the
adapter made for the served model, its target modules present in that model, the name free. The change goes to
every replica of the gateway (VLLM_UPSTREAMS, else VLLM_HOST:VLLM_PORT), all or none, and then into the adapter
registry (LORA_REGISTRY) that a starting vLLM loads and `ftk lora sync` restores.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ftk import paths
from ftk.console import console, fail, info, print_error, warn
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import command as serve_command
from ftk.serve import registry, replicas
from ftk.serve.adapters import Adapter, check_adapter, check_names, check_rank
from ftk.serve.client import ServerError, VllmClient, read_key
from ftk.settings import Settings, get_settings

lora_app = typer.Typer(
    help="List, load, unload and sync LoRA adapters on every running vLLM replica.", no_args_is_help=True
)

BaseUrl = typer.Option(
    "", "--base-url", help="One vLLM URL instead of every replica (default: VLLM_UPSTREAMS, else VLLM_HOST:VLLM_PORT)."
)
KeyFile = typer.Option(None, "--api-key-file", help="Key file (default VLLM_API_KEY_FILE).")


def _key(key_file: Path | None) -> str:
    return read_key(paths.resolve(key_file) if key_file else get_settings().path("vllm_api_key_file"))


def _replicas(base_url: str, key_file: Path | None) -> list[VllmClient]:
    """--base-url, else every vLLM of the gateway, through its internal address, with the vLLM key."""
    if base_url:
        return replicas.clients([base_url], _key(key_file), each_address=False)
    return replicas.clients(get_settings().vllm_servers, _key(key_file))


def _client(base_url: str, key_file: Path | None) -> VllmClient:
    return _replicas(base_url, key_file)[0]


def _entries() -> list[registry.Entry]:
    try:
        return registry.read(get_settings().resolved_lora_registry)
    except ValueError as err:
        fail(str(err))


def _models(client: VllmClient) -> list[dict]:
    try:
        return client.models()
    except ServerError as err:
        fail(str(err))


@lora_app.command("list")
def list_cmd(base_url: str = BaseUrl, api_key_file: Path = KeyFile) -> None:
    """The models each replica answers to (the base/merged model and every adapter), and the registry's."""
    registered = {e.name: e for e in _entries()}
    for client in _replicas(base_url, api_key_file):
        table = Table(title=f"Models on {client.base_url}")
        for col in ("name", "kind", "parent", "path", "registry"):
            table.add_column(col)
        for m in _models(client):
            kind = "adapter" if m.get("parent") else "model"
            name = m.get("id", "")
            entry = registered.get(name)
            mark = "" if kind == "model" else (f"{entry.loaded_by} {entry.loaded_at}" if entry else "not registered")
            table.add_row(name, kind, m.get("parent") or "", m.get("root") or "", mark)
        console.print(table)


@lora_app.command("load")
def load_cmd(
    name: str = typer.Argument(..., help="Name clients will send as `model`."),
    path: Path = typer.Argument(..., help="Adapter folder (as the servers see it)."),
    base_url: str = BaseUrl,
    api_key_file: Path = KeyFile,
    max_lora_rank: int = typer.Option(
        0,
        "--max-lora-rank",
        help="The servers' --max-lora-rank (default: runs/serve/state-<port>.json that scripts/serve.sh writes, "
        "else MAX_LORA_RANK).",
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the adapter checks first."),
) -> None:
    """Load an adapter on every replica (POST /v1/load_lora_adapter) after the preflight's adapter checks, then
    record it in LORA_REGISTRY; a replica that refuses it undoes the load on all."""
    s = get_settings()
    targets = _replicas(base_url, api_key_file)
    adapter_path = paths.resolve(path)
    if check:
        _check(s, targets[0], name, adapter_path, max_lora_rank)
    try:
        replicas.load_everywhere(targets, name, adapter_path)
    except replicas.ReplicaError as err:
        fail(str(err))
    try:  # base and rank for the registry (with --no-check the folder may be one only the servers see)
        adapter: Adapter | None = Adapter.load(name, adapter_path)
    except ValueError:
        adapter = None
    base, rank = (adapter.base_model, adapter.rank) if adapter else ("", 0)
    entry = registry.Entry(name, str(adapter_path), base, rank, registry.who(), registry.now())
    registry.put(s.resolved_lora_registry, entry)
    where = ", ".join(c.base_url for c in targets)
    info(f"loaded adapter '{name}' from {adapter_path} on {where}; clients send model=\"{name}\"")
    info(f"registered in {s.resolved_lora_registry}: a restarted vLLM loads it again")


def _check(s: Settings, client: VllmClient, name: str, adapter_path: Path, max_lora_rank: int) -> None:
    models = _models(client)
    base = next((m for m in models if not m.get("parent")), {})
    state = serve_command.read_state(s)
    rank_limit = max_lora_rank or int(state.get("max_lora_rank") or 0) or s.max_lora_rank
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


@lora_app.command("unload")
def unload_cmd(
    name: str = typer.Argument(..., help="Adapter name to unload."),
    base_url: str = BaseUrl,
    api_key_file: Path = KeyFile,
) -> None:
    """Unload an adapter from every replica (POST /v1/unload_lora_adapter) and from LORA_REGISTRY."""
    s = get_settings()
    targets = _replicas(base_url, api_key_file)
    known = any(e.name == name for e in _entries())
    if not known and not any(name in _adapters(c) for c in targets):
        fail(f"adapter '{name}' is neither registered nor loaded on {', '.join(c.base_url for c in targets)}")
    failures = replicas.unload_everywhere(targets, name)
    registry.remove(s.resolved_lora_registry, name)
    if failures:
        for f in failures[:-1]:
            print_error(f)
        fail(f"{failures[-1]}; '{name}' left the registry: run `ftk lora sync` once the replica answers")
    info(f"unloaded adapter '{name}' from {', '.join(c.base_url for c in targets)} and the registry")


def _adapters(client: VllmClient) -> dict[str, str]:
    try:
        return replicas.adapters_on(client)
    except ServerError as err:
        fail(str(err))


@lora_app.command("sync")
def sync_cmd(
    check_only: bool = typer.Option(False, "--check", help="Only report drift; exit 1 when there is some."),
    base_url: str = BaseUrl,
    api_key_file: Path = KeyFile,
) -> None:
    """Make every replica serve exactly the registry's adapters; the drift found is shown as a table."""
    s = get_settings()
    targets = _replicas(base_url, api_key_file)
    entries = _entries()
    found = replicas.drift(targets, entries)
    if not found:
        info(f"no drift: {len(targets)} replica(s) serve the {len(entries)} adapter(s) of {s.resolved_lora_registry}")
        return
    if not check_only:
        replicas.fix(targets, entries, found)
    table = Table(title=f"Drift from {s.resolved_lora_registry}")
    for col in ("replica", "adapter", "drift", "detail", *(() if check_only else ("fixed",))):
        table.add_column(col)
    for row in found:
        table.add_row(row.replica, row.adapter, row.problem, row.detail, *(() if check_only else (row.fixed,)))
    console.print(table)
    if check_only:
        fail(f"{len(found)} drift(s); `ftk lora sync` fixes them", 1)
    left = [r for r in found if r.fixed != "yes"]
    if left:
        fail(f"{len(left)} of {len(found)} drift(s) not fixed (see the table)")
    info(f"fixed {len(found)} drift(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(lora_app, name="lora")
