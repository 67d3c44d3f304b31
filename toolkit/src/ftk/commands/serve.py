"""`ftk serve key|wait`: the shared vLLM key file, and waiting until a server answers (`ftk run serve` is the stage)."""

from __future__ import annotations

from pathlib import Path

import typer

from ftk.console import console, err_console, fail, info
from ftk.secret_file import ensure_secret
from ftk.serve import command as serve_command
from ftk.serve.client import VllmClient
from ftk.settings import get_settings, split_list

serve_app = typer.Typer(
    help="Serve helpers: the vLLM key file, waiting until healthy (`ftk run serve` is the stage).", no_args_is_help=True
)


@serve_app.command("key")
def key_cmd(path: Path = typer.Argument(None, help="Key file; default VLLM_API_KEY_FILE.")) -> None:
    """Create the gateway -> vLLM key file (0600, random) when missing; prints its path, never the key."""
    target = path or get_settings().path("vllm_api_key_file")
    if ensure_secret(target):
        info(f"created {target} (0600) with a random key")
    console.print(str(target))


@serve_app.command("wait")
def wait_cmd(
    timeout: float = typer.Option(300, "--timeout", help="Seconds to wait before giving up."),
    base_url: str = typer.Option("", "--base-url", help="vLLM URL (default http://VLLM_HOST:VLLM_PORT)."),
    model: list[str] = typer.Option(
        [],
        "--model",
        help="Names /v1/models must list (default: from the state "
        "file, else SERVED_MODEL_NAME and the LORA_MODULES names).",
    ),
    pid: int = typer.Option(0, "--pid", help="Give up early when this process (the server) exits."),
) -> None:
    """Wait until /health answers and /v1/models lists every expected name."""
    s = get_settings()
    state = serve_command.read_state(s)
    expected = (
        model
        or state.get("expected_models")
        or [s.served_model_name, *(item.partition("=")[0] for item in split_list(s.lora_modules))]
    )
    client = VllmClient(base_url or serve_command.base_url(s), timeout=10, key_file=s.path("vllm_api_key_file"))
    alive = None
    if pid:
        import psutil

        def alive() -> bool:
            return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE

    err_console.print(f"waiting up to {timeout:.0f}s for {client.base_url} to serve {', '.join(expected)}")
    ok, status, seconds = client.wait(list(expected), timeout, alive=alive)
    if not ok:
        fail(
            f"vLLM at {client.base_url} not ready after {seconds:.0f}s: {status}; read the server log "
            "(scripts/serve.sh output) or raise --timeout"
        )
    console.print(f"ready in {seconds:.1f}s: {status}")


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
