"""`ftk init`: first-run state of a compose host (scripts/init.sh, `docker compose run --rm init`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ftk import first_run, paths
from ftk.console import console, info
from ftk.settings import get_settings


def init_cmd(
    uid: Annotated[int, typer.Option("--uid", min=0, help="Host user id the containers run as (FTK_UID).")],
    gid: Annotated[int, typer.Option("--gid", min=0, help="Its group id (FTK_GID).")],
    project_only: Annotated[
        bool, typer.Option("--project-only", help="Refuse folders outside the project (the init container).")
    ] = False,
) -> None:
    """Folders, FTK_UID/FTK_GID in .env, the vLLM key, Grafana's password and a first client API key.

    Idempotent: what exists is kept, a second run changes nothing. The client key is printed once, here.
    """
    s = get_settings()
    ids = first_run.set_env_ids(paths.env_file(), uid, gid)  # first: no .env, nothing made
    steps = [ids, *first_run.ensure_folders(s, paths.project_home() if project_only else None)]
    steps.append(first_run.secret(s.path("vllm_api_key_file"), "vLLM key"))
    steps.append(first_run.secret(s.path("grafana_admin_password_file"), "Grafana password"))
    key_step, key = first_run.ensure_first_key(s.path("api_keys_file"))
    steps.append(key_step)

    table = Table(title="ftk init")
    for col in ("what", "path", "status", "note"):
        table.add_column(col)
    for step in steps:
        table.add_row(step.what, str(step.path), "made" if step.changed else "kept", step.note)
    console.print(table)
    if key:
        info("the client API key (shown only now; keep it, e.g. in a password manager):")
        print(key)
    if not any(step.changed for step in steps):
        info("nothing to do: everything was already in place")


def register(app: typer.Typer) -> None:
    app.command("init")(init_cmd)
