"""The `ftk` command. Each module in `ftk.commands` adds its own command(s) through `register(app)`."""

from __future__ import annotations

import importlib
import pkgutil

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


def _register_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        except ModuleNotFoundError as err:
            # The train and serve venvs install ftk without every stage's libraries (e.g. openai):
            # commands needing a library that venv lacks are left out there, the others still work.
            if err.name and not err.name.startswith("ftk"):
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


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
