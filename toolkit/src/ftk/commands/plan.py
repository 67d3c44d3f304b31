"""`ftk plan serve`: does the model fit the GPUs, and how many sequences of MAX_MODEL_LEN, before vLLM;
`ftk plan replicas`: how many replicas for a request rate; `ftk plan train`: GPUs and ZeRO mode of a LoRA run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from ftk import paths
from ftk.console import EXIT_INVALID, EXIT_USAGE, console, fail
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import plan as planner
from ftk.settings import get_settings
from ftk.train import plan as train_plan

plan_app = typer.Typer(help="Plan resources before starting a stage.", no_args_is_help=True)


def _yes(flag: bool) -> str:
    return "[green]yes[/]" if flag else "[red]no[/]"


def _model(model: Path | None, default: Path, settings: str) -> ModelInfo:
    """The planned model: --model, else the default folder; one without config.json names the settings that
    choose the default."""
    folder = paths.resolve(model) if model else default
    if not (folder / "config.json").is_file():
        fail(f"{folder}/config.json not found; give --model FOLDER or set {settings}")
    return ModelInfo.load(folder)


def _gpu_memory(gpu_memory: str, overhead: str, example: str) -> tuple[int, int, int | None]:
    """(bytes of one GPU, overhead bytes, GPUs nvidia-smi sees or None): --gpu-memory, else nvidia-smi's figure;
    a usage error when there is neither."""
    smi = planner.gpu_memory_from_smi()
    try:
        gpu_bytes = planner.parse_size(gpu_memory) if gpu_memory else (smi[1] if smi else 0)
        overhead_bytes = planner.parse_size(overhead)
    except ValueError as err:
        fail(f"--gpu-memory/--overhead: {err}", EXIT_USAGE)
    if not gpu_bytes:
        fail(
            f"no GPU visible (nvidia-smi) to read the memory from; give --gpu-memory, e.g. --gpu-memory {example}",
            EXIT_USAGE,
        )
    return gpu_bytes, overhead_bytes, smi[0] if smi else None


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
    info = _model(model, s.resolved_serve_model_path, "SERVE_MODEL_PATH/MODEL_ID")
    gpu_bytes, overhead_bytes, visible = _gpu_memory(gpu_memory, overhead, "24GiB")
    available = gpus or visible
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
                    "model": str(info.path),
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
        head = Table(title=f"Model {info.path.name}", show_header=False)
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


@plan_app.command("train")
def plan_train(
    model: Path = typer.Option(None, "--model", help="Model folder (default: the base model, MODEL_ID)."),
    gpu_memory: str = typer.Option("", "--gpu-memory", help="Memory of one GPU, e.g. 80GiB (default: nvidia-smi)."),
    max_gpus: int = typer.Option(8, "--max-gpus", min=1, help="Largest GPU count to show (1, 2, 4 ... up to it)."),
    rank: int = typer.Option(0, "--lora-rank", min=0, help="LoRA rank (default: LORA_RANK, else 8)."),
    batch: int = typer.Option(
        0, "--batch", min=0, help="Per-GPU batch (default: PER_DEVICE_TRAIN_BATCH_SIZE, else 1)."
    ),
    cutoff: int = typer.Option(0, "--cutoff-len", min=0, help="Tokens per sample (default: CUTOFF_LEN, else 2048)."),
    tokens: int = typer.Option(0, "--tokens", min=0, help="Tokens to train on (samples x length x epochs)."),
    tokens_per_s: float = typer.Option(
        0.0, "--tokens-per-second", min=0, help="Measured tokens/s of ONE GPU (train manifest or `make bench`)."
    ),
    overhead: str = typer.Option("2GiB", "--overhead", help="Per-GPU memory for CUDA context and buffers."),
) -> None:
    """Memory per GPU of a LoRA run on 1, 2, 4 ... GPUs (DDP, ZeRO-2, ZeRO-3), and hours for --tokens."""
    s = get_settings()
    info = _model(model, s.base_model_path, "MODEL_ID")
    gpu_bytes, overhead_bytes, _ = _gpu_memory(gpu_memory, overhead, "80GiB")
    sizes = planner.model_sizes(info, "bfloat16")
    inter = int(info.text_value("intermediate_size", 4 * info.hidden_size))
    r = rank or s.lora_rank or 8
    lora = train_plan.lora_params(
        info.hidden_size, inter, info.num_attention_heads, info.num_kv_heads, info.head_dim, info.num_layers, r
    )
    b, c = batch or s.per_device_train_batch_size or 1, cutoff or s.cutoff_len or 2048
    acts = train_plan.activation_bytes(b, c, info.hidden_size, info.num_layers, sizes.dtype_bytes)
    counts = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= max_gpus]
    found = train_plan.rows(sizes.weight_bytes, lora, acts, gpu_bytes, overhead_bytes, counts, tokens, tokens_per_s)
    table = Table(
        title=f"LoRA training of {info.path.name}: {sizes.params / 1e9:.2f} B params, rank {r} ({lora / 1e6:.1f} M "
        f"trainable), batch {b} x {c} tokens per GPU, {planner.human(gpu_bytes)} GPUs (estimate)"
    )
    for col in ("GPUs", "mode", "weights", "LoRA+Adam", "activations", "total/GPU", "fits", "hours"):
        table.add_column(col, justify="right")
    for row in found:
        hours = f"{row.hours:.1f}" if row.hours is not None else "-"
        table.add_row(
            str(row.gpus), row.zero, planner.human(row.weights), planner.human(row.lora_state),
            planner.human(row.activations), planner.human(row.total), _yes(row.fits), hours,
        )  # fmt: skip
    console.print(table)
    fitting = next((row for row in found if row.fits), None)
    if fitting is None:
        fail("no layout fits; use QLoRA (QUANTIZATION_BIT=4), a shorter CUTOFF_LEN, or bigger GPUs", EXIT_INVALID)
    console.print(
        f"fewest GPUs: {fitting.gpus} ({fitting.zero}; .env: NPROC_PER_NODE={fitting.gpus}"
        + (f", DEEPSPEED_CONFIG=configs/deepspeed/{fitting.zero}.json" if fitting.zero != "ddp" else "")
        + "); more GPUs cut the time, not the memory, unless ZeRO-3"
    )


@plan_app.command("replicas")
def plan_replicas(
    rate: float = typer.Option(..., "--rate", min=0, help="Requests per second to serve at peak."),
    replica_rps: float = typer.Option(
        ..., "--replica-rps", min=0.001, help="Requests/s ONE replica sustains (measured: `make bench` on it)."
    ),
    headroom: float = typer.Option(0.7, "--headroom", min=0.1, max=1.0, help="Share of that to plan with."),
) -> None:
    """vLLM replicas (and GPUs: replicas x TENSOR_PARALLEL_SIZE) for a request rate, from a measured figure."""
    s = get_settings()
    replicas = max(1, math.ceil(rate / (replica_rps * headroom)))
    table = Table(title="Serving replicas", show_header=False)
    table.add_row("peak rate", f"{rate:g} req/s")
    table.add_row("one replica", f"{replica_rps:g} req/s measured, planned at {headroom:.0%}")
    table.add_row("replicas", f"{replicas} (SERVE_MIN_REPLICAS..SERVE_MAX_REPLICAS for the autoscaler)")
    table.add_row("GPUs", f"{replicas * s.tensor_parallel_size} (TENSOR_PARALLEL_SIZE={s.tensor_parallel_size} each)")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
