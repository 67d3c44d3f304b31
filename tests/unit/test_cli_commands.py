"""The ftk command list: every command module is registered explicitly, and a command whose library a venv lacks
says so (naming the package and the venv that runs it) instead of vanishing from `ftk --help`."""

from __future__ import annotations

import pkgutil
import subprocess

from conftest import clean_env, venv_bin
from ftk import cli, commands


def test_every_command_module_is_listed():
    modules = {m.name for m in pkgutil.iter_modules(commands.__path__)}
    assert modules == set(cli.COMMANDS), f"list new command modules in ftk.cli.COMMANDS: {modules ^ set(cli.COMMANDS)}"


def test_a_command_lacking_its_library_names_it_and_the_venv_to_use():
    # the train venv has no openai: `ftk smoke` there explains itself instead of being an unknown command
    train_ftk = venv_bin("train", "ftk")
    r = subprocess.run(
        [str(train_ftk), "smoke", "--base-url", "https://x/v1"], capture_output=True, text=True, env=clean_env()
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "needs the Python package 'openai'" in r.stderr
    assert ".venvs/toolkit/bin/ftk smoke" in r.stderr
    listing = subprocess.run([str(train_ftk), "--help"], capture_output=True, text=True, env=clean_env())
    assert "Not in this venv (needs 'openai'): run .venvs/toolkit/bin/ftk" in " ".join(listing.stdout.split())
