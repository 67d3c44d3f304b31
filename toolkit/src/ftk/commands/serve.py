"""`ftk serve preflight|command|wait|key`: the Python half of scripts/serve.sh, and the demo's wait."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ftk.console import EXIT_INVALID, console, err_console, fail, info, print_error, warn
from ftk.secret_file import ensure_secret
from ftk.serve import command as serve_command
from ftk.serve import preflight
from ftk.serve.client import VllmClient
from ftk.settings import get_settings, split_list

serve_app = typer.Typer(
    help="Serve stage helpers: preflight, the vLLM command line, waiting until healthy.", no_args_is_help=True
)


def _report() -> preflight.Report:
    report = preflight.run(get_settings())
    for line in report.warnings:
        warn(line)
    for line in report.problems:
        print_error(line)
    return report


@serve_app.command("preflight")
def preflight_cmd() -> None:
    """Check the model folder, MAX_MODEL_LEN and every adapter (rank, base, target modules, names)."""
    report = _report()
    if not report.ok:
        raise typer.Exit(EXIT_INVALID)
    s = get_settings()
    info(
        f"preflight ok: model {s.resolved_serve_model_path}, {len(report.adapters)} adapter(s), "
        f"max LoRA rank {report.max_lora_rank if report.adapters or s.allow_runtime_lora else '-'}"
    )


@serve_app.command("command")
def command_cmd(
    print0: bool = typer.Option(False, "--print0", help="NUL-separated argv on stdout (for scripts/serve.sh)."),
    write_state: bool = typer.Option(False, "--write-state", help="Write runs/serve/state-<port>.json."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the preflight first."),
) -> None:
    """Print the vLLM command line built from settings (never the API key)."""
    s = get_settings()
    report = _report() if check else preflight.run(s)
    if check and not report.ok:
        raise typer.Exit(EXIT_INVALID)
    try:
        cmd = serve_command.build(s, report)
    except FileNotFoundError as err:
        fail(str(err))
    if write_state:
        serve_command.write_state(s, cmd)
    if print0:
        sys.stdout.write("\0".join(cmd.full()) + "\0")
    else:
        console.print(cmd.display(), soft_wrap=True, markup=False)


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
