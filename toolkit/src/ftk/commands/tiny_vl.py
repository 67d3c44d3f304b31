"""`ftk tiny-vl build`: a tiny random Qwen3-VL / Qwen2-VL model folder, made offline for tests and demos."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ftk import paths
from ftk.console import EXIT_USAGE, UserError, console, info
from ftk.settings import get_settings
from ftk.vl import tiny_model

ARCH_NAMES = ("qwen3vl", "qwen2vl")


def _can_build_here() -> bool:
    """The builder needs transformers' Qwen-VL classes and torchvision (video processors)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision", "transformers"))


def _delegate_to_train_venv(argv: list[str]) -> None:
    ftk = paths.venv_bin("train", "ftk")
    if not ftk.exists():
        raise UserError(
            f"this python ({sys.executable}) has no torchvision and {ftk} is missing: "
            "run `scripts/setup.sh train` (or make setup), then run this command again"
        )
    info(f"building in the train venv: {ftk} {' '.join(argv)}")
    result = subprocess.run([str(ftk), *argv], check=False, env={**os.environ, "FTK_TINY_VL_DELEGATED": "1"})
    raise typer.Exit(result.returncode)


def build(
    out: Annotated[Path | None, typer.Argument(help="Model folder to write; default: MODELS_DIR/tiny-<arch>.")] = None,
    arch: Annotated[str, typer.Option(help="qwen3vl (Qwen3-VL) or qwen2vl (Qwen2-VL).")] = "qwen3vl",
    seed: Annotated[int, typer.Option(help="Seed of the random weights (same seed, same weights).")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the folder is up to date.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing when the folder is up to date.")] = False,
) -> None:
    """Build a tiny random vision-language model with a real tokenizer, processor and chat template."""
    if arch not in ARCH_NAMES:
        raise UserError(f"--arch {arch!r} is not supported; use one of: {', '.join(ARCH_NAMES)}", EXIT_USAGE)
    target = paths.resolve(out) if out is not None else get_settings().path("models_dir") / f"tiny-{arch}"
    if not force and tiny_model.manifest_matches(target, arch, seed):
        if not quiet:
            info(f"{target} is up to date ({arch}, seed {seed}); --force rebuilds it")
        return
    if not _can_build_here():
        if os.environ.get("FTK_TINY_VL_DELEGATED"):
            raise UserError("the train venv has no torchvision/transformers: run `scripts/setup.sh train` again")
        argv = ["tiny-vl", "build", str(target), "--arch", arch, "--seed", str(seed)]
        _delegate_to_train_venv(argv + (["--force"] if force else []) + (["--quiet"] if quiet else []))
    info(f"building tiny {arch} (seed {seed}) into {target}")
    manifest = tiny_model.build(arch, target, seed)
    table = Table(title=f"tiny {arch} model", show_header=False)
    for key in ("architecture", "llamafactory_template", "parameters", "vocab_size", "head_dim", "seed"):
        table.add_row(key, str(manifest[key]))
    table.add_row("files", ", ".join(manifest["files"]))
    table.add_row("folder", str(target))
    console.print(table)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Tiny random vision-language models for tests (built offline).", no_args_is_help=True)
    group.command("build")(build)
    app.add_typer(group, name="tiny-vl")
