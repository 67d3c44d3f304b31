"""`ftk env check|show|export`: validate a `.env` file, show the effective settings, export them to shell."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from dotenv import dotenv_values
from pydantic import ValidationError
from rich.table import Table

from ftk import paths
from ftk.console import EXIT_INVALID, console, print_error, warn
from ftk.settings import Settings, closest_key, format_validation_error, get_settings, known_keys

env_app = typer.Typer(help="Check and show settings from .env and the environment.", no_args_is_help=True)

# Keys that are read from the environment by tools the toolkit drives, not by the settings model.
PASSTHROUGH_KEYS = {
    "CUDA_VISIBLE_DEVICES",
    "NO_COLOR",
    "FTK_HOME",
    "FTK_ENV_FILE",
    "HF_HOME",
    "COMPOSE_PROFILES",
    "COMPOSE_PROJECT_NAME",
}


def _line_numbers(file: Path) -> dict[str, int]:
    numbers: dict[str, int] = {}
    for i, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            numbers.setdefault(line.removeprefix("export ").split("=", 1)[0].strip(), i)
    return numbers


def check_file(file: Path) -> list[str]:
    """Every problem in an env file, one line each, naming the key, the line and the fix."""
    if not file.is_file():
        return [f"{file}: no such file; copy .env.example to {file} and edit it"]
    problems: list[str] = []
    values = dotenv_values(file)
    lines = _line_numbers(file)
    known = set(known_keys())
    for key in values:
        if key.upper() not in known and key.upper() not in PASSTHROUGH_KEYS:
            hint = closest_key(key)
            fix = f"did you mean {hint}?" if hint else "remove it (see .env.example for the known keys)"
            problems.append(f"{file}:{lines.get(key, '?')}: {key}: unknown key; {fix}")
    clean = {k.lower(): v for k, v in values.items() if k.upper() in known and v is not None}
    try:
        Settings.model_validate(clean)
    except ValidationError as err:
        for msg in format_validation_error(err, str(file)):
            key = msg.split(": ", 1)[1].split("=", 1)[0]
            problems.append(msg.replace(f"{file}: ", f"{file}:{lines.get(key, lines.get(key.lower(), '?'))}: ", 1))
    return problems


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


def register(app: typer.Typer) -> None:
    app.add_typer(env_app, name="env")
