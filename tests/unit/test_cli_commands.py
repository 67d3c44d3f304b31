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


def test_a_command_imports_only_its_own_module():
    """`ftk lora load` starts without ftk eval's plotting (matplotlib: slow, and a config-dir warning in a
    read-only container) or ftk smoke's openai; `ftk eval` still has its plot module."""
    python = venv_bin("toolkit", "python")
    for argv, present in ((["lora", "load", "--help"], False), (["eval", "--help"], True)):
        r = subprocess.run(
            [str(python), "-X", "importtime", "-m", "ftk", *argv], capture_output=True, text=True, env=clean_env()
        )
        assert r.returncode == 0, r.stderr[-2000:]
        imported = {
            line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")
        }
        assert ("matplotlib" in imported) is present, f"ftk {' '.join(argv)}: matplotlib imported is not {present}"
        if not present:
            assert "openai" not in imported and "ftk.commands.eval" not in imported
