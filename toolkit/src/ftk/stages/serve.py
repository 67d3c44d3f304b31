"""The serve stage: the serve checks, the shared key file, then vLLM by exec (signals reach vLLM itself)."""

from __future__ import annotations

import os

from ftk.console import UserError, info, print_error, warn
from ftk.secret_file import ensure_secret
from ftk.serve import command as serve_command
from ftk.serve import preflight
from ftk.settings import Settings
from ftk.stages import checks


def prepare(settings: Settings) -> tuple[serve_command.ServeCommand, str]:
    """Everything before exec: checks, the key (read once), the command line and the state file `ftk lora` reads."""
    info("serve: preflight")
    checks.require(settings, "serve")
    report = preflight.run(settings)  # the adapters and model the command line needs (checked just above)
    key_file = settings.path("vllm_api_key_file")
    try:
        if ensure_secret(key_file):
            info(f"created {key_file} (0600) with a random key")
    except OSError as err:
        raise UserError(
            f"cannot create VLLM_API_KEY_FILE={key_file} ({err.strerror}); fix its folder's permissions"
        ) from None
    text = key_file.read_text(encoding="utf-8")
    if not text.strip():
        raise UserError(f"VLLM_API_KEY_FILE={key_file} is empty; delete it so a random key is created")
    try:
        cmd = serve_command.build(settings, report)
    except FileNotFoundError as err:
        raise UserError(str(err)) from None
    serve_command.write_state(settings, cmd)
    return cmd, text.splitlines()[0].strip()  # the key on the first line, never printed


def run(settings: Settings, dry_run: bool = False) -> None:
    cmd, key = prepare(settings)
    key_file = settings.path("vllm_api_key_file")
    info(f"serve: starting vLLM on {settings.vllm_host}:{settings.vllm_port} (API key from {key_file})")
    info(f"command: {cmd.display()}")
    if dry_run:
        warn("--dry-run: vLLM not started")
        return None
    env = {**os.environ, **cmd.env, "VLLM_API_KEY": key}
    try:
        os.execvpe(cmd.argv[0], cmd.argv, env)
    except OSError as err:
        print_error(f"could not start {cmd.argv[0]}: {err.strerror}")
        raise UserError("fix SERVE_VENV or run `make setup` (scripts/setup.sh serve)") from None
