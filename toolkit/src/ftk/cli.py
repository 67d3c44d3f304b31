"""The `ftk` command. Each module in `ftk.commands` adds its own command(s) through `register(app)`."""

from __future__ import annotations

import importlib
import sys

import typer

from ftk import commands
from ftk.console import UserError, print_error
from ftk.settings import SettingsError

app = typer.Typer(
    name="ftk",
    help="Fine-tune, merge and serve toolkit: datasets, configs, preflight checks, smoke tests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


# Every command module, listed (not discovered) so a missing one is an error, not a command that silently vanishes.
COMMANDS = (
    "config",
    "dataset",
    "doctor",
    "env",
    "eval",
    "gateway",
    "gpu_check",
    "init",
    "kube",
    "lora",
    "merge",
    "model",
    "plan",
    "release",
    "run",
    "serve",
    "smoke",
    "tiny_vl",
    "train",
)


def _unavailable(name: str, missing: str) -> None:
    """A stand-in for a command whose library this venv lacks: it says which library and where it runs."""
    command = name.replace("_", "-")

    # Listed in `ftk --help` too, so the command is seen where it cannot run, with where it does.
    @app.command(
        command,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help=f"Not in this venv (needs '{missing}'): run .venvs/toolkit/bin/ftk {command}.",
        add_help_option=False,
    )
    def stand_in() -> None:
        raise UserError(
            f"`ftk {command}` needs the Python package '{missing}', which this environment ({sys.prefix}) lacks; "
            f"run it with the toolkit venv's ftk (.venvs/toolkit/bin/ftk {command}), which has every library"
        )


def _register_commands() -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{commands.__name__}.{name}")
        except ModuleNotFoundError as err:
            # The train venv installs ftk without every stage's libraries (e.g. openai for smoke).
            if err.name and not err.name.startswith("ftk"):
                _unavailable(name, err.name.split(".")[0])
                continue
            raise
        module.register(app)


_register_commands()


def main() -> None:
    # typer runs in standalone mode (usage errors print and exit 2); our own user errors end here.
    try:
        app()
    except UserError as err:
        print_error(str(err))
        raise SystemExit(err.code) from None
    except SettingsError as err:
        for line in str(err).splitlines():
            print_error(line)
        print_error("fix the key(s) above in the .env file or the environment (`ftk env check` lists all problems)")
        raise SystemExit(1) from None
