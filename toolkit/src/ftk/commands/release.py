"""`ftk release list|promote|rollback`: merged models as versions, promoted through a gate, rolled back at once.

SERVE_MODEL_PATH=release makes the serve stage run the release RELEASE_FILE points at, and the gateway send its
requests to the server `ftk release promote` started for it.
"""

from __future__ import annotations

import typer
from rich.table import Table

from ftk.console import console, fail, info
from ftk.serve import release
from ftk.settings import Settings, get_settings

release_app = typer.Typer(
    help="Merged models as releases: list, promote through a gate, roll back.", no_args_is_help=True
)


def _release_mode(s: Settings) -> None:
    """The gateway follows the pointer only when SERVE_MODEL_PATH=release: refuse before starting anything."""
    if not s.serves_release:
        fail(
            f"SERVE_MODEL_PATH={s.serve_model_path or '(empty)'}: set SERVE_MODEL_PATH=release in .env so the "
            "serve stage and the gateway follow the release pointer, then promote again"
        )


@release_app.command("list")
def list_cmd() -> None:
    """Every merged model (models/merged/<RUN_ID>): created, base, status of its folder, current/previous."""
    s = get_settings()
    rows = release.versions(s)
    table = Table(title=f"Releases in {release.merged_dir(s)} (pointer {s.resolved_release_file})")
    for col in ("run id", "created", "base", "status", "release"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["run_id"], row["created"], row["base"], row["status"], row["release"])
    console.print(table)
    current = release.read(s)["current"]
    if current:
        info(f"current: {current['run_id']} on {current.get('upstream', '?')} since {current.get('at', '?')}")
    elif not rows:
        info("no merged model yet: scripts/merge.sh writes models/merged/<RUN_ID>")


@release_app.command("promote")
def promote_cmd(run_id: str = typer.Argument(..., help="The merged model models/merged/RUN_ID to serve.")) -> None:
    """Gate (preflight, a new vLLM with the candidate, ftk smoke, the eval gate when RELEASE_EVAL=true), then
    the switch: the gateway moves to the new server and the old one stops once drained."""
    s = get_settings()
    _release_mode(s)
    if release.read(s)["current"].get("run_id") == run_id:
        fail(f"{run_id} is already the current release; `ftk release list` shows the others")
    entry = release.switch(s, run_id, "promote")
    info(f"release {run_id} is live on {entry['upstream']} (log {entry['log']})")


@release_app.command("rollback")
def rollback_cmd() -> None:
    """Back to the previous release, through the same gate and switch."""
    s = get_settings()
    _release_mode(s)
    history = release.read(s)["history"]
    if not history:
        fail(f"no previous release in {s.resolved_release_file}; nothing to roll back to")
    run_id = history[0]["run_id"]
    entry = release.switch(s, run_id, "rollback")
    info(f"rolled back to {run_id}, live on {entry['upstream']}")


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
