"""`ftk smoke`: the client smoke test after every deploy (default: through the gateway, its CA and a key)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ftk import paths
from ftk.console import EXIT_INVALID, EXIT_USAGE, console, fail
from ftk.gateway.keys import read_keys
from ftk.hf.modelinfo import ModelInfo
from ftk.serve.client import read_key
from ftk.settings import Settings, get_settings, split_list
from ftk.smoke.run import PROBE, Smoke, SmokeConfig


def default_base_url(s: Settings) -> str:
    if s.smoke_base_url:
        return s.smoke_base_url.rstrip("/")
    return f"https://{s.gateway_server_name}:{s.gateway_https_port}/v1"


def default_key(s: Settings) -> str:
    """SMOKE_API_KEY_FILE's key, else the first active key of API_KEYS_FILE."""
    if str(s.smoke_api_key_file) not in ("", "."):
        return read_key(s.path("smoke_api_key_file"))
    try:
        active = [r.key for r in read_keys(s.path("api_keys_file")) if r.status == "active"]
        return active[0] if active else ""
    except Exception:
        return read_key(s.path("api_keys_file"))


def smoke(
    base_url: str = typer.Option(
        "",
        "--base-url",
        help="OpenAI base URL ending in /v1 (default: SMOKE_BASE_URL, "
        "else the gateway https://GATEWAY_SERVER_NAME:GATEWAY_HTTPS_PORT/v1).",
    ),
    api_key_file: Path = typer.Option(
        None,
        "--api-key-file",
        help="Key file (default: SMOKE_API_KEY_FILE, else the first active key in API_KEYS_FILE).",
    ),
    ca: Path = typer.Option(None, "--ca", help="CA certificate for https (default: TLS_CA when it exists)."),
    model: list[str] = typer.Option([], "--model", help="Base/merged model name(s) (default SERVED_MODEL_NAME)."),
    adapter: list[str] = typer.Option(
        [], "--adapter", help="Adapter name(s) to prove live (default: the names in LORA_MODULES)."
    ),
    expect: str = typer.Option(
        None,
        "--expect",
        help="Phrase each adapter's probe answer must contain (default SMOKE_EXPECT, else ASSISTANT_NAME; '' to skip).",
    ),
    probe: str = typer.Option(PROBE, "--probe", help="The question asked to the base and each adapter."),
    image: bool = typer.Option(
        None,
        "--image/--no-image",
        help="Send a base64 PNG (default: when the served model's config has a vision_config).",
    ),
    timeout: float = typer.Option(0, "--timeout", help="Seconds per request (default SMOKE_TIMEOUT)."),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check a deployment with the OpenAI SDK: models, chat, streaming, adapters live, image for VL models."""
    s = get_settings()
    url = (base_url or default_base_url(s)).rstrip("/")
    if not url.endswith("/v1"):
        fail(f"--base-url {url}: the OpenAI base URL ends in /v1 (e.g. https://host:8443/v1)", EXIT_USAGE)
    key = read_key(paths.resolve(api_key_file)) if api_key_file else default_key(s)
    if api_key_file and not key:
        fail(f"--api-key-file {api_key_file}: no key in that file", EXIT_USAGE)
    ca_path = paths.resolve(ca) if ca else None
    if ca_path is not None and not ca_path.is_file():
        fail(f"--ca {ca_path}: no such file; give the gateway's CA certificate (TLS_CA)", EXIT_USAGE)
    if ca_path is None and url.startswith("https://") and s.path("tls_ca").is_file():
        ca_path = s.path("tls_ca")
    if image is None:
        folder = s.resolved_serve_model_path
        image = (folder / "config.json").is_file() and ModelInfo.load(folder).is_vision_language
    adapters = adapter or [item.partition("=")[0] for item in split_list(s.lora_modules)]
    cfg = SmokeConfig(
        base_url=url,
        api_key=key,
        models=model or [s.served_model_name],
        adapters=adapters,
        ca=ca_path,
        expect=(s.smoke_expect or s.assistant_name) if expect is None else expect,
        probe=probe,
        timeout=timeout or s.smoke_timeout,
        image=bool(image),
    )
    checks = Smoke(cfg).run()
    failed = [c for c in checks if not c.ok]
    if as_json:
        console.print_json(json.dumps({"base_url": url, "ok": not failed, "checks": [c.as_dict() for c in checks]}))
    else:
        table = Table(title=f"Smoke test of {url}")
        for col in ("check", "result", "reason", "detail", "s"):
            table.add_column(col, overflow="fold", justify="right" if col == "s" else "left")
        for c in checks:
            table.add_row(c.name, "[green]PASS[/]" if c.ok else "[red]FAIL[/]", c.reason, c.detail, f"{c.seconds:.1f}")
        console.print(table)
        console.print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(EXIT_INVALID)


def register(app: typer.Typer) -> None:
    app.command("smoke")(smoke)
