"""`ftk plan serve`: does the model fit the GPUs, and how many sequences of MAX_MODEL_LEN, before vLLM."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from ftk import paths
from ftk.console import EXIT_INVALID, EXIT_USAGE, console, fail
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import plan as planner
from ftk.settings import get_settings

plan_app = typer.Typer(help="Plan resources before starting a stage.", no_args_is_help=True)


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


@plan_app.command("serve")
def plan_serve(
    model: Path = typer.Option(None, "--model", help="Model folder (default: the one scripts/serve.sh serves)."),
    gpus: int = typer.Option(0, "--gpus", min=0, help="GPUs available (default: nvidia-smi)."),
    gpu_memory: str = typer.Option("", "--gpu-memory", help="Memory of one GPU, e.g. 24GiB (default: nvidia-smi)."),
    overhead: str = typer.Option(
        "1GiB",
        "--overhead",
        help="Per-GPU memory for activations, CUDA graphs and "
        "the runtime (an estimate; vLLM profiles the real figure).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Weights per GPU, KV-cache bytes per token and sequences that fit, for tensor parallel 1/2/4/8."""
    s = get_settings()
    folder = paths.resolve(model) if model else s.resolved_serve_model_path
    if not (folder / "config.json").is_file():
        fail(f"{folder}/config.json not found; give --model FOLDER or set SERVE_MODEL_PATH/MODEL_ID")
    info = ModelInfo.load(folder)
    smi = planner.gpu_memory_from_smi()
    try:
        gpu_bytes = planner.parse_size(gpu_memory) if gpu_memory else (smi[1] if smi else 0)
        overhead_bytes = planner.parse_size(overhead)
    except ValueError as err:
        fail(f"--gpu-memory/--overhead: {err}", EXIT_USAGE)
    if not gpu_bytes:
        fail(
            "no GPU visible (nvidia-smi) to read the memory from; give --gpu-memory, e.g. --gpu-memory 24GiB",
            EXIT_USAGE,
        )
    available = gpus or (smi[0] if smi else None)
    sizes = planner.model_sizes(info, s.dtype, s.kv_cache_dtype)
    tps = sorted({1, 2, 4, 8, s.tensor_parallel_size})
    rows = [
        planner.plan_row(
            info,
            sizes,
            tp,
            gpu_bytes,
            s.gpu_memory_utilization,
            s.max_model_len,
            s.num_seqs(cpu=False),
            overhead_bytes,
            available,
        )
        for tp in tps
    ]
    chosen = next(r for r in rows if r.tp == s.tensor_parallel_size)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "model": str(folder),
                    "params": sizes.params,
                    "params_counted": sizes.counted,
                    "weight_bytes": sizes.weight_bytes,
                    "kv_bytes_per_token": sizes.kv_bytes_per_token,
                    "gpu_memory_bytes": gpu_bytes,
                    "gpus": available,
                    "gpu_memory_utilization": s.gpu_memory_utilization,
                    "max_model_len": s.max_model_len,
                    "max_num_seqs": s.num_seqs(cpu=False),
                    "options": [asdict(r) for r in rows],
                    "planned_tp": s.tensor_parallel_size,
                }
            )
        )
    else:
        head = Table(title=f"Model {folder.name}", show_header=False)
        source = "safetensors headers" if sizes.counted else "estimated from config.json"
        head.add_row("parameters", f"{sizes.params / 1e9:.3f} B ({source})")
        head.add_row("weights", planner.human(sizes.weight_bytes))
        head.add_row("layers / KV heads / head dim", f"{info.num_layers} / {info.num_kv_heads} / {info.head_dim}")
        head.add_row("KV cache per token", f"{planner.human(sizes.kv_bytes_per_token)} (all GPUs together)")
        head.add_row(
            "GPU",
            f"{available if available is not None else '?'} x {planner.human(gpu_bytes)}, "
            f"GPU_MEMORY_UTILIZATION={s.gpu_memory_utilization}, overhead {planner.human(overhead_bytes)}",
        )
        head.add_row(
            "planned",
            f"TENSOR_PARALLEL_SIZE={s.tensor_parallel_size} MAX_MODEL_LEN={s.max_model_len} "
            f"MAX_NUM_SEQS={s.num_seqs(cpu=False)}",
        )
        console.print(head)
        table = Table(title="Options (memory per GPU; seqs = sequences of MAX_MODEL_LEN at once)")
        for col in (
            "TP",
            "weights",
            "KV/token",
            "KV budget",
            "KV tokens",
            "seqs",
            "fits len",
            "fits seqs",
            "note",
        ):
            table.add_column(col, justify="left" if col == "note" else "right", overflow="fold")
        for r in rows:
            mark = " *" if r.tp == s.tensor_parallel_size else ""
            table.add_row(
                f"{r.tp}{mark}",
                planner.human(r.weights_per_gpu),
                planner.human(r.kv_per_token_per_gpu),
                planner.human(r.kv_budget_per_gpu),
                f"{r.tokens:,}",
                f"{r.sequences:,}",
                _yes(r.fits_model_len and r.valid and not r.note),
                _yes(r.fits_num_seqs and r.valid and not r.note),
                r.note,
            )
        console.print(table)
    if not (chosen.fits_model_len and chosen.valid):
        fail(
            f"TENSOR_PARALLEL_SIZE={chosen.tp}: not one sequence of MAX_MODEL_LEN={s.max_model_len} fits "
            f"({chosen.note or 'KV cache too small'}); raise TENSOR_PARALLEL_SIZE, lower MAX_MODEL_LEN, "
            "or use bigger GPUs",
            EXIT_INVALID,
        )
    if not chosen.fits_num_seqs and not as_json:
        console.print(
            f"[yellow]note:[/] only {chosen.sequences} of MAX_NUM_SEQS={s.num_seqs(cpu=False)} full-length "
            "sequences fit at once; vLLM queues the rest (fine when prompts are short)"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
