"""One rich console for the CLI, and the error convention: a clear line, no traceback, a known exit code."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from rich.console import Console

# Exit codes shared by every command: 0 ok, 1 the thing checked is bad, 2 usage error (typer's own code).
EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2

console = Console(highlight=False, no_color=bool(os.environ.get("NO_COLOR")))
err_console = Console(stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR")))


class UserError(Exception):
    """A problem the user can fix; printed as one line (no traceback) with the given exit code."""

    def __init__(self, message: str, code: int = EXIT_INVALID) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    raise UserError(message, code)


def print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True)


def info(message: str) -> None:
    err_console.print(f"[cyan]::[/] {message}", markup=True, soft_wrap=True)


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
