"""`ftk release list|promote|rollback`: merged models as versions, promoted through a gate, rolled back at once.

SERVE_MODEL_PATH=release makes the serve stage run the release RELEASE_FILE points at, and the gateway send its
requests to the server `ftk release promote` started for it.

The steps `check`, `gate`, `record`, `undo`, `repoint`, `drain`, `previous` and `current` are the checks and pointer
writes of a promote on their own: scripts/release.sh runs them in the toolkit container (compose), where the
servers are containers the host's docker starts, not processes of ftk.
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
    release.check(s, run_id)
    entry = release.switch(s, run_id, "promote")
    info(f"release {run_id} is live on {entry['upstream']} (log {entry['log']})")


@release_app.command("rollback")
def rollback_cmd() -> None:
    """Back to the previous release, through the same gate and switch."""
    s = get_settings()
    _release_mode(s)
    run_id = release.previous(s)
    entry = release.switch(s, run_id, "rollback")
    info(f"rolled back to {run_id}, live on {entry['upstream']}")


# ----- the steps of scripts/release.sh (compose) ----------------------------------------------------------------
UPSTREAM = typer.Option(..., "--upstream", help="host:port of the vLLM server (a container name in compose).")


@release_app.command("check")
def check_cmd(run_id: str = typer.Argument(..., help="The merged model models/merged/RUN_ID.")) -> None:
    """Step: release mode, not the current release, the folder's preflight; prints the folder on stdout."""
    s = get_settings()
    _release_mode(s)
    folder = release.check(s, run_id)
    info(f"gate: preflight of {folder} passed")
    print(folder)


@release_app.command("gate")
def gate_cmd(
    run_id: str = typer.Argument(..., help="The merged model the server at --url serves."),
    url: str = typer.Option(..., "--url", help="The server's OpenAI base URL, ending in /v1."),
    smoke_only: bool = typer.Option(False, "--smoke-only", help="Only `ftk smoke`, never the eval gate."),
) -> None:
    """Step: `ftk smoke` against the server at --url, then the eval gate against the current release when
    RELEASE_EVAL=true: the gate of `promote`."""
    s = get_settings()
    folder = release.preflight(s, run_id)
    release.gate(s, url.rstrip("/"), folder, release.read(s)["current"], smoke_only=smoke_only)


@release_app.command("record")
def record_cmd(
    run_id: str = typer.Argument(..., help="The release now live."),
    upstream: str = UPSTREAM,
    action: str = typer.Option("promote", "--action", help="promote or rollback (how the history moves)."),
) -> None:
    """Step: the switch's pointer write: RUN_ID on --upstream becomes current, the old current history[0]."""
    s = get_settings()
    _release_mode(s)
    _, entry = release.record(s, run_id, release.preflight(s, run_id), upstream, action)
    info(f"release pointer: {run_id} on {entry['upstream']} ({action})")


@release_app.command("undo")
def undo_cmd(
    run_id: str = typer.Argument(..., help="The release `record` just made current."), upstream: str = UPSTREAM
) -> None:
    """Step: take back `record` when the gateway did not reload: the pointer before it (RELEASE_FILE.bak) comes
    back, only while the pointer still names RUN_ID on --upstream."""
    s = get_settings()
    _release_mode(s)
    old = release.undo_record(s, run_id, upstream)
    info(f"release pointer back on {old.get('run_id') or '(none)'} ({old.get('upstream') or 'no upstream'})")


@release_app.command("repoint")
def repoint_cmd(run_id: str = typer.Argument(..., help="The current release."), upstream: str = UPSTREAM) -> None:
    """Step: the current release moved to another server; only its upstream changes (no history entry)."""
    s = get_settings()
    _release_mode(s)
    entry = release.repoint(s, run_id, upstream)
    info(f"release pointer: {run_id} now on {entry['upstream']}")


@release_app.command("drain")
def drain_cmd(upstream: str = UPSTREAM) -> None:
    """Step: wait until the server has no request running or waiting (its /metrics), at most
    RELEASE_DRAIN_TIMEOUT; exit 0 either way (a warning when it was still busy)."""
    release.drain(get_settings(), upstream)


@release_app.command("previous")
def previous_cmd() -> None:
    """Step: print the release a rollback returns to; fails when there is none."""
    s = get_settings()
    _release_mode(s)
    print(release.previous(s))


@release_app.command("current")
def current_cmd() -> None:
    """Step: print the current release's run id and upstream (tab-separated); nothing when none."""
    current = release.read(get_settings())["current"]
    if current.get("run_id"):
        print(f"{current['run_id']}\t{current.get('upstream', '')}")


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")
