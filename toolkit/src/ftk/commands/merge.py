"""`ftk merge check-base|verify`: is an adapter trained on this base, and does a merged model reproduce base +
adapter (run in the train venv; `ftk run merge` is the stage and calls verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ftk.console import EXIT_INVALID, UserError, console, err_console, info, warn
from ftk.merge import qlora
from ftk.merge import verify as verifying

merge_app = typer.Typer(help="Adapter merges: base check, servable export, verification.", no_args_is_help=True)


@merge_app.command("check-base")
def check_base(
    adapter: Path = typer.Option(..., "--adapter", help="LoRA adapter folder"),
    base: Path = typer.Option(..., "--base", help="base model folder the merge uses"),
) -> None:
    """Exit 1 when the adapter was trained on another base model (paths, config and LoRA shapes compared)."""
    from ftk.merge import base_check

    for note in base_check.check(adapter.resolve(), base.resolve()):
        info(note)
    console.print(f"[green]ok[/] {adapter} belongs to {base}")


def _verdict(r: Any) -> str:
    if r.same:
        return "[green]yes[/]"
    return "[yellow]close[/]" if r.close else "[red]NO[/]"


def _comparison_table(title: str, left: str, results: list) -> Table:
    table = Table(title=title, show_lines=True)
    for column in ("prompt", left, "merged", "same"):
        table.add_column(column)
    table.add_column("KL merged", justify="right")
    table.add_column("KL no adapter", justify="right")
    for r in results:
        got = r.expected if r.same else r.got
        table.add_row(r.prompt, r.expected, got, _verdict(r), f"{r.kl_merged:.2e}", f"{r.kl_base:.2e}")
    table.caption = (
        "KL: mean nats per token from base + adapter, on its own answer; 'close': ids differ where a rounded merge "
        f"may, KL merged within {verifying.KL_SHARE:.0%} of the adapter's effect (or under {verifying.KL_FLOOR:g})"
    )
    return table


def _qlora_ab(merged: Path, base: Path, adapter: Path, prompts: int, max_new_tokens: int, dtype: str) -> None:
    """For a QLoRA adapter: the merged model against what training saw (quantized base + adapter). Warns only."""
    quant = qlora.training_quantization(adapter)
    if quant is None:
        return
    what = f"{quant.bits}-bit {quant.quant_type if quant.bits == 4 else ''}".strip()
    warn(
        f"{adapter} is a QLoRA adapter (quantization_bit={quant.bits} in {quant.source}): it learned against a "
        f"{what} base, and the merge adds it to the full-precision base; comparing the merged model with "
        "what training saw (A/B)"
    )
    try:
        results = verifying.compare(merged, base, adapter, prompts, max_new_tokens, dtype, quantization=quant)
    except (OSError, ValueError, ImportError, RuntimeError) as err:
        warn(f"QLoRA A/B skipped: could not load {base} in {what} ({err}); compare by hand before serving")
        return
    console.print(_comparison_table(f"A/B, {dtype}: {what} base + adapter (training) vs merged", "training", results))
    drift = [r for r in results if not r.same]
    if drift:
        warn(
            f"QLoRA drift: the merged model answers differently from training on {len(drift)} of {len(results)} "
            "prompts (expected after merging a QLoRA adapter). Judge the table above; to serve what was trained, "
            "serve the base quantized the same way with the adapter (LORA_MODULES, VLLM_EXTRA_ARGS="
            "'--quantization bitsandbytes' on a GPU host), or retrain with plain LoRA if the drift is too large"
        )
    else:
        console.print(f"[green]ok[/] QLoRA A/B: same greedy output as training on {len(results)} prompts")


@merge_app.command("verify")
def verify(
    merged: Path = typer.Argument(..., help="merged model folder"),
    base: Path = typer.Option(..., "--base", help="base model folder"),
    adapter: Path = typer.Option(..., "--adapter", help="LoRA adapter folder"),
    prompts: int = typer.Option(3, "--prompts", min=1, max=6, help="how many prompts to compare"),
    max_new_tokens: int = typer.Option(24, "--max-new-tokens", min=1),
    dtype: str = typer.Option("float32", "--dtype", help="float32 (identical output expected), bfloat16, float16"),
    qlora_ab: bool = typer.Option(
        True, "--qlora-ab/--no-qlora-ab", help="for a QLoRA adapter, also compare with the quantized base (A/B)"
    ),
) -> None:
    """Greedy outputs of MERGED against BASE + ADAPTER; exit 1 on any difference. Lists MERGED's files.

    For a QLoRA adapter (its run trained on a quantized base) it also prints an A/B table against the base
    quantized as in training: drift there is expected and only warned about.
    """
    for folder, what in ((merged, "merged model"), (base, "base model"), (adapter, "adapter")):
        if not folder.is_dir():
            raise UserError(f"{what} folder {folder} does not exist")
    try:
        results = verifying.compare(merged, base, adapter, prompts, max_new_tokens, dtype)
    except (OSError, ValueError) as err:
        raise UserError(f"could not load the models: {err}") from None
    console.print(_comparison_table(f"greedy output, {dtype}: base + adapter vs merged", "base + adapter", results))
    files = Table(title=f"{merged}")
    files.add_column("file")
    files.add_column("MB", justify="right")
    files.add_column("what it is for")
    for name, size, purpose in verifying.files(merged):
        files.add_row(name, f"{size / 1e6:.1f}", purpose)
    console.print(files)
    bad = [r for r in results if not r.close]
    if bad:
        for r in bad:
            err_console.print(
                f"[red]mismatch[/] on prompt {r.prompt!r}: base + adapter said {r.expected!r}, merged said {r.got!r} "
                f"(KL {r.kl_merged:.2e} nats/token; the adapter's own effect {r.kl_base:.2e})",
                markup=True,
                soft_wrap=True,
            )
        raise UserError(
            f"{merged} does not reproduce base + adapter on {len(bad)} of {len(results)} prompts; "
            "do not serve it: merge again (scripts/merge.sh) and check export dtype/adapter",
            EXIT_INVALID,
        )
    close = sum(not r.same for r in results)
    if close:
        console.print(
            f"[green]ok[/] {merged}: identical greedy output on {len(results) - close} of {len(results)} prompts; "
            f"on {close} the answers part where the model was nearly undecided, within what {dtype} rounding explains"
        )
    else:
        console.print(f"[green]ok[/] {merged}: identical greedy output on {len(results)} prompts")
    if qlora_ab:
        _qlora_ab(merged, base, adapter, prompts, max_new_tokens, dtype)


def register(app: typer.Typer) -> None:
    app.add_typer(merge_app, name="merge")
