"""Benchmark: the merged model against the base model + LoRA adapter, served by vLLM side by side.

One run: start-up time to healthy (scripts/serve.sh until `/health` and `/v1/models` list the names), then at
1, 8 and 32 concurrent streamed chat requests: requests/s and time to first token (median, p90), measured in
alternating rounds (merged, then lora) so load drifts hit both alike. The table shows lora/merged ratios.

    scripts/bench.sh serve_merged_vs_lora -- [--adapter DIR] [--merged DIR] [--concurrency 1,8,32]
                                             [--requests-per-level 2] [--max-tokens 16] [--no-eager]

Defaults: the adapter is runs/<RUN_ID>/adapter and the merged model models/merged/<RUN_ID> (scripts/train.sh,
scripts/merge.sh). Without an adapter, a random LoRA (r=8, all projections) is written for the base model;
without a merged model, the base model stands in (same shapes, so the same serving cost). Clients: an async
OpenAI SDK client (vLLM's own `vllm bench serve` imports vLLM per run, minutes on a small CPU host).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openai
from ftk import paths
from ftk.hf.random_lora import random_adapter
from ftk.serve.client import read_key
from ftk.serve.served import Served
from ftk.settings import get_settings
from rich.console import Console
from rich.table import Table

console = Console(width=max(120, Console().width))
PROMPT = "Write one sentence about the sea."


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
