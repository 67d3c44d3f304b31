"""Benchmark: the merged model against the base model + LoRA adapter, served by vLLM side by side.

One run: start-up time to healthy (scripts/serve.sh until `/health` and `/v1/models` list the names), then at
1, 8 and 32 concurrent streamed chat requests: requests/s and time to first token (median, p90), measured in
alternating rounds (merged, then lora) so load drifts hit both alike. The table shows lora/merged ratios.

    python -m ftk.bench.serve_merged_vs_lora [--adapter DIR] [--merged DIR] [--concurrency 1,8,32]
                                             [--requests-per-level 2] [--max-tokens 16] [--no-eager]

Defaults: the adapter is runs/<RUN_ID>/adapter and the merged model models/merged/<RUN_ID> (scripts/train.sh,
scripts/merge.sh). Without an adapter, a random LoRA (r=8, all projections) is written for the base model;
without a merged model, the base model stands in (same shapes, so the same serving cost). Clients: an async
OpenAI SDK client (vLLM's own `vllm bench serve` imports vLLM per run, minutes on a small CPU host).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import openai
from rich.console import Console
from rich.table import Table

from ftk import paths
from ftk.hf.modelinfo import ModelInfo
from ftk.serve.client import VllmClient, read_key
from ftk.settings import get_settings

console = Console(width=max(120, Console().width))
PROMPT = "Write one sentence about the sea."
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_adapter(model: Path, out: Path, r: int = 8) -> Path:
    """A PEFT-format LoRA with small random weights for every projection of `model` (torch, no PEFT)."""
    import torch
    from safetensors.torch import save_file

    info = ModelInfo.load(model)
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for name, t in info.tensors.items():
        module = name.removesuffix(".weight")
        if module.rsplit(".", 1)[-1] in TARGETS and len(t.shape) == 2:
            out_f, in_f = t.shape
            tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(r, in_f, generator=gen) * 0.02
            tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(out_f, r, generator=gen) * 0.02
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": r,
                "lora_alpha": 2 * r,
                "lora_dropout": 0.0,
                "target_modules": list(TARGETS),
                "base_model_name_or_path": str(model),
                "bias": "none",
                "fan_in_fan_out": False,
                "modules_to_save": None,
            }
        )
    )
    return out


@dataclass
class Served:
    label: str
    model_name: str
    env: dict[str, str]
    work: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    startup: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_file(self) -> Path:
        return self.work / "vllm_api_key"

    def start(self, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(
            FTK_HOME=str(paths.project_home()),
            NO_COLOR="1",
            ALLOW_CPU="true",
            VLLM_HOST="127.0.0.1",
            VLLM_PORT=str(self.port),
            VLLM_API_KEY_FILE=str(self.key_file),
            RUNS_DIR=str(self.work / "runs"),
        )
        env.update(self.env)  # the caller's values win (ALLOW_CPU=false on a GPU host: gpu-check)
        log = self.work / f"{self.label}.log"
        console.print(f"starting {self.label} on :{self.port} (scripts/serve.sh, log {log})")
        start = time.monotonic()
        with log.open("ab") as f:
            self.proc = subprocess.Popen(
                [str(paths.project_home() / "scripts" / "serve.sh")],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        while not self.key_file.is_file() and self.proc.poll() is None:
            time.sleep(0.2)
        client = VllmClient(self.url, read_key(self.key_file), timeout=10)
        expected = [self.model_name]
        ok, status, _ = client.wait(expected, timeout, interval=0.5, alive=lambda: self.proc.poll() is None)
        if not ok:
            self.stop()
            raise SystemExit(f"{self.label}: vLLM not ready ({status}); see {log}")
        self.startup = time.monotonic() - start

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass
class Level:
    rps: float
    ttft: list[float]

    @property
    def ttft_median(self) -> float:
        return statistics.median(self.ttft)

    @property
    def ttft_p90(self) -> float:
        ordered = sorted(self.ttft)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


async def run_level(target: Served, concurrency: int, requests: int, max_tokens: int) -> Level:
    client = openai.AsyncOpenAI(
        base_url=target.url + "/v1", api_key=read_key(target.key_file), max_retries=0, timeout=600
    )
    sem = asyncio.Semaphore(concurrency)
    ttfts: list[float] = []

    async def one() -> None:
        async with sem:
            start = time.monotonic()
            stream = await client.chat.completions.create(
                model=target.model_name,
                messages=[{"role": "user", "content": PROMPT}],
                temperature=0,
                max_tokens=max_tokens,
                stream=True,
            )
            first = None
            async for event in stream:
                if first is None and event.choices and event.choices[0].delta.content:
                    first = time.monotonic() - start
            ttfts.append(first if first is not None else time.monotonic() - start)

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    elapsed = time.monotonic() - start
    await client.close()
    return Level(requests / elapsed, ttfts)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", type=Path, help="LoRA adapter folder (default runs/<RUN_ID>/adapter)")
    p.add_argument("--merged", type=Path, help="merged model folder (default models/merged/<RUN_ID>)")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    p.add_argument("--requests-per-level", type=int, default=2, help="requests = this x concurrency (min 4)")
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for each server")
    p.add_argument("--no-eager", action="store_true", help="let vLLM compile (slower start-up, faster decode)")
    args = p.parse_args()
    s = get_settings()
    base = s.base_model_path
    work = Path(tempfile.mkdtemp(prefix="ftk-bench-serve-"))
    adapter = paths.resolve(args.adapter) if args.adapter else s.resolved_adapter_path
    notes = []
    if not (adapter / "adapter_config.json").is_file():
        adapter = random_adapter(base, work / "random-adapter")
        notes.append("random r=8 adapter (no trained one)")
    merged = paths.resolve(args.merged) if args.merged else s.resolved_merged_path
    if not (merged / "config.json").is_file():
        merged = base
        notes.append("base model as the merged stand-in (same shapes)")
    extra = "" if args.no_eager else "--enforce-eager"
    common = {
        "MODEL_ID": str(base),
        "MAX_MODEL_LEN": "512",
        "MAX_NUM_SEQS": "32",
        "VLLM_EXTRA_ARGS": extra,
        "LORA_MODULES": "",
        "ALLOW_RUNTIME_LORA": "false",
    }
    targets = [
        Served(
            "merged",
            "merged",
            {**common, "SERVE_MODEL_PATH": str(merged), "SERVED_MODEL_NAME": "merged"},
            work,
        ),
        Served(
            "lora",
            "adapter",
            {
                **common,
                "SERVE_MODEL_PATH": str(base),
                "SERVED_MODEL_NAME": "base",
                "LORA_MODULES": f"adapter={adapter}",
            },
            work,
        ),
    ]
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    results: dict[tuple[str, int], Level] = {}
    try:
        for t in targets:  # one at a time, so start-up is measured alone
            t.start(args.timeout)
            console.print(f"{t.label}: healthy in {t.startup:.1f}s")
        for c in levels:
            n = max(4, args.requests_per_level * c)
            for t in targets:
                results[(t.label, c)] = asyncio.run(run_level(t, c, n, args.max_tokens))
                lvl = results[(t.label, c)]
                console.print(f"{t.label} c={c}: {lvl.rps:.2f} req/s, TTFT median {lvl.ttft_median * 1000:.0f} ms")
    finally:
        for t in targets:
            t.stop()
    table = Table(
        title=f"vLLM: merged model vs base + LoRA ({', '.join(notes) or 'trained adapter, merged model'};"
        f" max_tokens {args.max_tokens}{', eager' if extra else ''})"
    )
    for col in ("measure", "merged", "base + LoRA", "lora / merged"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    m, lo = targets
    table.add_row("start-up to healthy (s)", f"{m.startup:.1f}", f"{lo.startup:.1f}", ratio(lo.startup, m.startup))
    for c in levels:
        a, b = results[("merged", c)], results[("lora", c)]
        table.add_row(f"requests/s @ {c}", f"{a.rps:.2f}", f"{b.rps:.2f}", ratio(b.rps, a.rps))
        table.add_row(
            f"TTFT median ms @ {c}",
            f"{a.ttft_median * 1000:.0f}",
            f"{b.ttft_median * 1000:.0f}",
            ratio(b.ttft_median, a.ttft_median),
        )
        table.add_row(
            f"TTFT p90 ms @ {c}",
            f"{a.ttft_p90 * 1000:.0f}",
            f"{b.ttft_p90 * 1000:.0f}",
            ratio(b.ttft_p90, a.ttft_p90),
        )
    console.print(table)


if __name__ == "__main__":
    main()
