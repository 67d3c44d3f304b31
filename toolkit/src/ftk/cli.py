"""The `ftk` command. Each module in `ftk.commands` adds its own command(s) through `register(app)`."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from ftk import commands
from ftk.console import UserError, print_error
from ftk.settings import SettingsError

# Every command module, listed (not discovered) so a missing one is an error, not a command that silently vanishes.
# A module registers one command (or group) named as the module, `_` written `-`.
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


def _unavailable(app: typer.Typer, command: str, missing: str) -> None:
    """A stand-in for a command whose library this venv lacks: it says which library and where it runs."""

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


Command = TyperCommand | TyperGroup  # what typer builds of a registered command or group


def _load(command: str) -> Command:
    """The click command of one command module, imported now."""
    app = typer.Typer(rich_markup_mode="rich", add_completion=False)
    try:
        module = importlib.import_module(f"{commands.__name__}.{command.replace('-', '_')}")
    except ModuleNotFoundError as err:
        # The train venv installs ftk without every stage's libraries (e.g. openai for smoke).
        if not err.name or err.name.startswith("ftk"):
            raise
        _unavailable(app, command, err.name.split(".")[0])
    else:
        module.register(app)
    group = typer.main.get_group(app)
    if command not in group.commands:
        raise RuntimeError(f"ftk.commands: {command} registered {sorted(group.commands)}, not the command {command}")
    return group.commands[command]


class _Commands(Mapping[str, Command]):
    """The commands by name; a command's module is imported when that command is looked up, so `ftk lora load`
    loads no other command's libraries (matplotlib for `ftk eval`'s plot, openai for `ftk smoke`); `ftk --help`
    lists, and so loads, them all."""

    def __init__(self) -> None:
        self._loaded: dict[str, Command] = {}

    def __iter__(self) -> Iterator[str]:
        return (name.replace("_", "-") for name in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)

    def __getitem__(self, command: str) -> Command:
        if command.replace("-", "_") not in COMMANDS or "_" in command:
            raise KeyError(command)
        if command not in self._loaded:
            self._loaded[command] = _load(command)
        return self._loaded[command]


class _Group(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Commands()  # type: ignore[assignment]  # read only: the modules register, not add_command


app = typer.Typer(
    name="ftk",
    help="Fine-tune, merge and serve toolkit: datasets, configs, preflight checks, smoke tests.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    pass  # a callback makes `ftk` a group of the commands above, none of them registered on it


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
