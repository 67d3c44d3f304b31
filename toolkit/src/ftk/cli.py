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
        module = importlib.import_module(f"{commands.__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    try:
        rc = app(standalone_mode=False)  # returns the code of typer.Exit instead of exiting
        if isinstance(rc, int) and rc:
            raise SystemExit(rc)
    except UserError as err:
        print_error(str(err))
        raise SystemExit(err.code) from None
    except SettingsError as err:
        for line in str(err).splitlines():
            print_error(line)
        print_error("fix the key(s) above in the .env file or the environment (`ftk env check` lists all problems)")
        raise SystemExit(1) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        print_error("aborted")
        raise SystemExit(130) from None
    except Exception as exc:  # click usage errors arrive here with standalone_mode=False
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
