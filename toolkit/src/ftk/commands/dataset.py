"""`ftk dataset validate|register|list|make-shapes|init`: LLaMA-Factory data files, checked and registered."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ftk import paths
from ftk.console import EXIT_INVALID, EXIT_USAGE, UserError, console, err_console, info, warn
from ftk.dataset import register as registering
from ftk.dataset.formats import Layout, layout_from_entry
from ftk.dataset.problems import ProblemSink
from ftk.dataset.registry import Registry
from ftk.dataset.report import json_report, print_problems, summary_table
from ftk.dataset.shapes import make_shapes
from ftk.dataset.tokens import TokenCounter
from ftk.dataset.validate import Options, validate_file
from ftk.settings import get_settings

dataset_app = typer.Typer(
    help="Validate LLaMA-Factory data files and register them in dataset_info.json.", no_args_is_help=True
)

PROJECT_SETS = (
    ("identity", "identity.json"),
    ("instructions", "instructions.jsonl"),
    ("shapes", "shapes.jsonl"),
    ("preferences", "preferences.json"),
    ("feedback", "feedback.json"),
)


class StageChoice(str, Enum):
    sft = "sft"
    pt = "pt"
    dpo = "dpo"
    rm = "rm"
    kto = "kto"


class FormatChoice(str, Enum):
    auto = "auto"
    sharegpt = "sharegpt"
    alpaca = "alpaca"


def _dirs(dataset_dir: Path | None, media_root: Path | None, create: bool = False) -> tuple[Path, Path]:
    """The dataset dir and media root: the flags (relative to the working dir) when given, else settings. The
    media root defaults to the dataset dir, as LLaMA-Factory's `media_dir` does."""
    s = get_settings()
    ds = dataset_dir.resolve() if dataset_dir else s.path("dataset_dir")
    media = media_root.resolve() if media_root else s.resolved_media_root(ds)
    if create:
        media.mkdir(parents=True, exist_ok=True)
    elif media_root and not media.is_dir():
        raise UserError(
            f"--media-root {media}: no such directory; point it at the folder that holds the images",
            EXIT_USAGE,
        )
    return ds, media


def _existing(files: list[Path]) -> None:
    for f in files:
        if not f.exists():
            raise UserError(f"{f}: no such file; check the path", EXIT_USAGE)
        if not f.is_file():
            raise UserError(f"{f}: not a file; give JSON or JSONL data files", EXIT_USAGE)


def _targets(args: list[Path], dataset_dir: Path) -> list[tuple[Path, Layout | None, str]]:
    """(file, layout, shown) per argument: a file as given, or a registered name with its columns and tags."""
    out: list[tuple[Path, Layout | None, str]] = []
    registry: dict[str, Any] | None = None
    for arg in args:
        if not arg.exists() and len(arg.parts) == 1 and arg.suffix.lower() not in (".json", ".jsonl"):
            registry = Registry(dataset_dir).read() if registry is None else registry
            entry = registry.get(str(arg))
            if isinstance(entry, dict) and entry.get("file_name"):
                path = dataset_dir / str(entry["file_name"])
                parts = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
                _existing(parts)
                out += [(p, layout_from_entry(entry), str(p)) for p in parts]
                continue
            raise UserError(
                f"{arg}: no such file, nor a data set registered in {dataset_dir / 'dataset_info.json'}",
                EXIT_USAGE,
            )
        _existing([arg])
        out.append((arg, None, str(arg)))
    return out


def _progress() -> tuple[AbstractContextManager[object], object]:
    """A transient progress line on stderr for long files (only on a terminal)."""
    if not err_console.is_terminal:
        return nullcontext(), None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task = bar.add_task("validating")

    def update(file: str, samples: int) -> None:
        bar.update(task, description=f"validating {file}: {samples:,} samples")

    return bar, update


@dataset_app.command("validate")
def validate(
    files: list[Path] = typer.Argument(
        ..., help="JSON (array) or JSONL files, or names registered in dataset_info.json", show_default=False
    ),
    media_root: Path = typer.Option(
        None,
        "--media-root",
        help="folder media paths are relative to (LLaMA-Factory's media_dir) \\[default: MEDIA_ROOT, else the "
        "dataset dir]",
    ),
    dataset_dir: Path = typer.Option(
        None, "--dataset-dir", help="where registered names are looked up \\[default: DATASET_DIR]"
    ),
    strict: bool = typer.Option(
        False, "--strict", help="quality findings (duplicates, long samples, empty text) are errors too"
    ),
    stage: StageChoice = typer.Option(
        None, "--stage", help="the LLaMA-Factory stage the data must fit (dpo and orpo: dpo)"
    ),
    fmt: FormatChoice = typer.Option(FormatChoice.auto, "--format", help="auto detects it from the first sample"),
    tokenizer: Path = typer.Option(
        None,
        "--tokenizer",
        help="tokenizer.json (or a model folder holding one) to count tokens with; needs --cutoff-len",
    ),
    cutoff_len: int = typer.Option(
        None,
        "--cutoff-len",
        min=1,
        help="report samples longer than this many tokens "
        "(turns rendered as ChatML '<|im_start|>role\\ntext<|im_end|>\\n', system "
        "prompt included, image placeholders counted as text)",
    ),
    as_json: bool = typer.Option(False, "--json", help="print a machine-readable report instead"),
    max_problems: int = typer.Option(200, "--max-problems", min=0, help="problem lines to print (all are counted)"),
) -> None:
    """Check data files in LLaMA-Factory's sharegpt or alpaca format (SFT, preference, KTO, pre-training text).

    One line per problem, `FILE:LINE: sample N: FIELD: what is wrong; how to fix`, then a summary table.
    Quality findings LLaMA-Factory trains on anyway end in [warning] and do not fail (--strict: they do).
    Exit 0 when all files are valid, 1 when a file has errors, 2 on a usage error (bad flag, missing file).
    """
    if (tokenizer is None) != (cutoff_len is None):
        raise UserError("--tokenizer and --cutoff-len go together: give both to check sample lengths", EXIT_USAGE)
    ds, media = _dirs(dataset_dir, media_root)
    targets = _targets(files, ds)
    counter = TokenCounter(tokenizer) if tokenizer else None
    sink = ProblemSink(max_problems)
    bar, update = _progress() if not as_json else (nullcontext(), None)
    opts = Options(
        media_root=media,
        format=None if fmt is FormatChoice.auto else fmt.value,
        tokens=counter,
        cutoff_len=cutoff_len or 0,
        progress=update,
        strict=strict,
        stage=stage.value if stage else None,
    )  # type: ignore[arg-type]
    with bar:
        reports = [validate_file(f, opts, sink, layout=layout, shown=shown) for f, layout, shown in targets]
    if as_json:
        print(json.dumps(json_report(reports, sink), indent=2, ensure_ascii=False))
    else:
        print_problems(console, sink)
        console.print(summary_table(reports))
    if not all(r.valid for r in reports):
        raise typer.Exit(EXIT_INVALID)


def _settings_assistant() -> tuple[str, str]:
    s = get_settings()
    return s.assistant_name, s.assistant_author


def _register_one(file: Path, name: str, dataset_dir: Path, media: Path, force: bool, max_problems: int) -> bool:
    sink = ProblemSink(max_problems)
    reg = registering.register(file, name, dataset_dir, media, force, sink, _settings_assistant())
    for note in reg.notes:
        info(note)
    if not reg.valid:
        print_problems(console, sink)
        console.print(summary_table(reg.reports))
        bad = next(r for r in reg.reports if not r.valid)
        raise UserError(
            f"refusing to register '{name}': {bad.file} has {bad.total} problem(s) (listed above); fix "
            "them and run again",
            EXIT_INVALID,
        )
    registry = dataset_dir / "dataset_info.json"
    entry = reg.entry or {}
    samples = reg.reports[-1].samples
    what = f"'{name}' -> {entry.get('file_name')} ({entry.get('formatting')}, {samples} samples)"
    if reg.outcome == "unchanged":
        console.print(
            f"unchanged: {what} is already registered in {registry} with this exact entry (no-op)",
            soft_wrap=True,
            markup=False,
        )
    else:
        console.print(f"{reg.outcome}: {what} in {registry}", soft_wrap=True, markup=False)
    return True


@dataset_app.command("register")
def register_cmd(
    file: Path = typer.Argument(
        ...,
        help="JSON or JSONL data file (a template with {{name}}/{{author}} is filled "
        "from ASSISTANT_NAME/ASSISTANT_AUTHOR into DATASET_DIR/generated/)",
    ),
    name: str = typer.Option(..., "--name", help="the name training refers to (DATASETS=...)"),
    dataset_dir: Path = typer.Option(
        None, "--dataset-dir", help="folder of dataset_info.json \\[default: DATASET_DIR]"
    ),
    media_root: Path = typer.Option(None, "--media-root", help="\\[default: MEDIA_ROOT]"),
    force: bool = typer.Option(False, "--force", help="replace a different entry of the same name"),
    max_problems: int = typer.Option(200, "--max-problems", min=0, help="problem lines to print"),
) -> None:
    """Validate FILE, then add it to dataset_info.json (atomic write, old file kept as a timestamped backup).

    The entry's formatting, columns and tags are inferred from the file. Other entries are never touched; an
    identical entry is a no-op; a different entry of the same name needs --force.
    Exit 1 when the data is invalid.
    """
    _existing([file])
    ds, media = _dirs(dataset_dir, media_root)
    _register_one(file, name, ds, media, force, max_problems)


@dataset_app.command("list")
def list_cmd(
    dataset_dir: Path = typer.Option(
        None, "--dataset-dir", help="folder of dataset_info.json \\[default: DATASET_DIR]"
    ),
    media_root: Path = typer.Option(None, "--media-root", help="\\[default: MEDIA_ROOT]"),
) -> None:
    """The registered data sets and whether each file still validates (exit 1 when one does not)."""
    ds, media = _dirs(dataset_dir, media_root)
    rows = registering.list_entries(ds, media)
    table = Table(title=f"{ds / 'dataset_info.json'}", title_justify="left")
    for col in ("name", "file", "format", "samples", "status"):
        table.add_column(col, overflow="fold", justify="right" if col == "samples" else "left")
    for r in rows:
        status = f"[green]{r.status}[/]" if r.valid else f"[red]{r.status}[/]"
        table.add_row(r.name, r.file, r.format, "-" if r.samples is None else f"{r.samples:,}", status)
    if not rows:
        warn(f"no data sets registered in {ds / 'dataset_info.json'}; add one with `ftk dataset register`")
    console.print(table)
    if not all(r.valid for r in rows):
        raise typer.Exit(EXIT_INVALID)


@dataset_app.command("make-shapes")
def make_shapes_cmd(
    media_root: Path = typer.Option(None, "--media-root", help="images go to MEDIA_ROOT/generated/shapes/"),
    out: Path = typer.Option(None, "--out", help="also write the samples (JSONL) here \\[default: data/shapes.jsonl]"),
) -> None:
    """Draw the shapes images (deterministic; unchanged files are not rewritten) and write their samples."""
    _, media = _dirs(None, media_root, create=True)
    target = out or paths.project_home() / "data" / "shapes.jsonl"
    written, total = make_shapes(media, target)
    console.print(
        f"shapes: {written} of {total} files written (images in {media / 'generated/shapes'}, samples in {target})",
        soft_wrap=True,
        markup=False,
    )


@dataset_app.command("init")
def init_cmd(
    dataset_dir: Path = typer.Option(None, "--dataset-dir", help="\\[default: DATASET_DIR]"),
    media_root: Path = typer.Option(None, "--media-root", help="\\[default: MEDIA_ROOT]"),
    force: bool = typer.Option(False, "--force", help="replace different entries of the same names"),
) -> None:
    """Register the project's data sets (identity, instructions, shapes, preferences, ...); a no-op when re-run."""
    ds, media = _dirs(dataset_dir, media_root, create=True)
    data = paths.project_home() / "data"
    for name, file in PROJECT_SETS:
        _register_one(data / file, name, ds, media, force, 200)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
