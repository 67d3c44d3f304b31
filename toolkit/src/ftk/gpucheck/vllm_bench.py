"""`vllm bench serve` against a running server, and the figures vLLM prints about itself at start-up.

The benchmark runs in the serve python (vLLM's own client: random prompts of fixed length, `--ignore-eos` so
every request produces exactly the asked output tokens) and saves its result JSON; `parse_result` keeps the
figures the report shows. `kv_cache_tokens` reads vLLM's "GPU KV cache size: N tokens" line from its log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

KV_LINE = re.compile(r"KV cache size:\s*([\d,]+)\s*tokens")
GRAPH_LINE = re.compile(r"Graph capturing finished in\s*([\d.]+)\s*secs")


@dataclass(frozen=True)
class BenchResult:
    concurrency: int
    completed: int
    output_tokens_per_s: float
    requests_per_s: float
    ttft_median_ms: float
    ttft_p99_ms: float
    tpot_median_ms: float

    @property
    def batch1_tokens_per_s(self) -> float:
        """Decode tokens/s of one stream: 1000 / TPOT (excludes the prefill, unlike output_tokens_per_s)."""
        return 1000.0 / self.tpot_median_ms if self.tpot_median_ms else 0.0


def parse_result(data: dict, concurrency: int) -> BenchResult:
    """The figures of one `vllm bench serve --save-result` JSON; a run with failed requests is an error."""
    try:
        completed = int(data["completed"])
        failed = int(data.get("failed", 0) or 0)
        if completed == 0 or failed:
            raise ValueError(f"{completed} requests completed, {failed} failed")
        return BenchResult(
            concurrency=concurrency,
            completed=completed,
            output_tokens_per_s=float(data["output_throughput"]),
            requests_per_s=float(data["request_throughput"]),
            ttft_median_ms=float(data["median_ttft_ms"]),
            ttft_p99_ms=float(data.get("p99_ttft_ms", data["median_ttft_ms"])),
            tpot_median_ms=float(data["median_tpot_ms"]),
        )
    except KeyError as err:
        raise ValueError(f"vllm bench serve result has no {err}; keys: {sorted(data)[:12]}") from None


def kv_cache_tokens(log: Path) -> int | None:
    """The last "KV cache size: N tokens" vLLM logged (one per engine start), or None."""
    if not log.is_file():
        return None
    found = KV_LINE.findall(log.read_text(encoding="utf-8", errors="replace"))
    return int(found[-1].replace(",", "")) if found else None


def graph_capture_seconds(log: Path) -> float | None:
    if not log.is_file():
        return None
    found = GRAPH_LINE.findall(log.read_text(encoding="utf-8", errors="replace"))
    return float(found[-1]) if found else None


def bench_argv(
    launcher: list[str],
    url: str,
    model: str,
    tokenizer: Path,
    concurrency: int,
    prompts: int,
    result: Path,
    input_len: int,
    output_len: int,
    lora: list[str] | None = None,
) -> list[str]:
    argv = [
        *launcher,
        "bench",
        "serve",
        "--backend",
        "openai",
        "--base-url",
        url,
        "--endpoint",
        "/v1/completions",
        "--model",
        model,
        "--tokenizer",
        str(tokenizer),
        "--dataset-name",
        "random",
        "--random-input-len",
        str(input_len),
        "--random-output-len",
        str(output_len),
        "--ignore-eos",
        "--num-prompts",
        str(prompts),
        "--max-concurrency",
        str(concurrency),
        "--request-rate",
        "inf",
        "--percentile-metrics",
        "ttft,tpot,itl",
        "--metric-percentiles",
        "50,99",
        "--seed",
        "0",
        "--save-result",
        "--result-dir",
        str(result.parent),
        "--result-filename",
        result.name,
    ]
    if lora:
        argv += ["--lora-modules", *lora]
    return argv


def run(
    launcher: list[str],
    url: str,
    api_key: str,
    model: str,
    tokenizer: Path,
    concurrency: int,
    prompts: int,
    result: Path,
    log: Path,
    input_len: int = 512,
    output_len: int = 128,
    lora: list[str] | None = None,
    timeout: float = 300,
) -> BenchResult:
    argv = bench_argv(launcher, url, model, tokenizer, concurrency, prompts, result, input_len, output_len, lora)
    env = {**os.environ, "OPENAI_API_KEY": api_key}
    result.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as f:
        f.write(f"\n$ {' '.join(argv)}\n".encode())
        f.flush()
        rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout, check=False)
    if rc.returncode != 0 or not result.is_file():
        raise RuntimeError(f"vllm bench serve (c={concurrency}) failed, exit {rc.returncode}; see {log}")
    return parse_result(json.loads(result.read_text(encoding="utf-8")), concurrency)
