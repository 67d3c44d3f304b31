"""`ftk env check|show|export|docs`: validate a `.env` file, show the effective settings, export them to shell,
write the settings reference."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from dotenv import dotenv_values
from rich.table import Table

from ftk import paths, settings_doc
from ftk.console import EXIT_INVALID, console, print_error, warn
from ftk.env_file import check_file
from ftk.settings import Settings, get_settings

env_app = typer.Typer(help="Check and show settings from .env and the environment.", no_args_is_help=True)


@env_app.command("check")
def check(file: Path = typer.Argument(None, help="env file to check (default: .env, or FTK_ENV_FILE)")) -> None:
    """Report unknown keys (with the closest known key) and bad values, naming each key and line."""
    target = file or paths.env_file()
    problems = check_file(target)
    for p in problems:
        print_error(p)
    if problems:
        raise typer.Exit(EXIT_INVALID)
    if target.name != ".env.example" and target.stat().st_mode & 0o044:
        warn(f"{target} is readable by other users and may hold secrets; run: chmod 600 {target}")
    console.print(f"[green]ok[/] {target}: {len(dotenv_values(target))} keys, all known and valid")


@env_app.command("show")
def show() -> None:
    """The effective settings (defaults, then .env, then environment) as a table."""
    s = get_settings()
    table = Table(title=f"settings ({paths.env_file()})")
    table.add_column("key")
    table.add_column("value")
    for name in Settings.model_fields:
        table.add_row(name.upper(), str(getattr(s, name)))
    console.print(table)


@env_app.command("export")
def export() -> None:
    """Validated settings as shell assignments, plus derived paths (BASE_MODEL_PATH, RUN_DIR, ...)."""
    s = get_settings()
    values = {name.upper(): getattr(s, name) for name in Settings.model_fields}
    out = {key: "" if value is None else str(value) for key, value in values.items()}  # None: empty in .env
    out.update(
        BASE_MODEL_PATH=str(s.base_model_path),
        RUN_DIR=str(s.run_dir),
        RESOLVED_ADAPTER_PATH=str(s.resolved_adapter_path),
        RESOLVED_MERGED_PATH=str(s.resolved_merged_path),
        FTK_HOME=str(paths.project_home()),
    )
    for key, value in out.items():
        print(f"export {key}={shlex.quote(value)}")


@env_app.command("docs")
def docs() -> None:
    """Print docs/settings.md: every key, its default and what it does (`ftk env docs > docs/settings.md`)."""
    print(settings_doc.render(paths.project_home() / ".env.example"), end="")


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")
