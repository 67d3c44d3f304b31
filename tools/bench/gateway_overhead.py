"""Benchmark: what the nginx gateway costs against direct vLLM, and why proxy buffering is off.

One run, four paths to the same vLLM server, measured in interleaved rounds so load drifts hit all alike:
  direct     http://127.0.0.1:VLLM_PORT (vLLM's own key)
  gateway    https through scripts/gateway.sh (TLS, API key, limits, njs body check and audit; buffering off)
  policy     the same gateway with a key that has a policy (allowed models, a max_tokens cap, n cap), so njs
             matches the model against globs and checks each capped field
  buffered   the same gateway rendered with GATEWAY_PROXY_BUFFERING=on
  baseline   with --baseline DIR: the gateway of another checkout of this project (its scripts, templates and
             toolkit/src), e.g. one from before a change: `git worktree add /tmp/ftk-before <commit>`
For each: time to first token (streamed, median), full-response latency (not streamed, median), and requests/s
at a fixed concurrency, streamed and not. The table shows ratios against direct (goal: TTFT within 10%,
throughput within 5%).

    scripts/bench.sh gateway_overhead -- [--requests 12] [--concurrency 4] [--max-tokens 48]
                                         [--vllm-url http://127.0.0.1:8000 --vllm-key-file FILE]
                                         [--baseline DIR]

Without --vllm-url it starts its own vLLM (scripts/serve.sh, the default model) on a free port. The gateways,
their keys and certificates live in a temporary folder and are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from ftk import paths
from ftk.gateway.keys import add_key_via_cli, first_active_key
from ftk.serve.served import free_port
from rich.console import Console
from rich.table import Table

console = Console(width=max(140, Console().width))
PROMPT = "Write a short story about a lighthouse keeper."


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(FTK_HOME=str(paths.project_home()), NO_COLOR="1", ALLOW_CPU="true", **extra)
    return env


@dataclass
class Target:
    name: str
    base_url: str
    key: str
    verify: str | bool = False


class Stack:
    """vLLM (optional) and the two gateway variants, all started and stopped by this benchmark."""

    def __init__(self, work: Path, vllm_url: str | None, vllm_key_file: Path | None) -> None:
        self.work = work
        self.home = paths.project_home()
        self.vllm_proc: subprocess.Popen | None = None
        self.vllm_url = vllm_url
        self.vllm_key_file = (vllm_key_file or work / "vllm_api_key").resolve()  # gateways of other homes read it
        self.gateways: list[tuple[Path, dict[str, str]]] = []  # (its gateway.sh, its environment)

    def start_vllm(self, timeout: float = 900) -> None:
        if self.vllm_url:
            return
        port = free_port()
        self.vllm_url = f"http://127.0.0.1:{port}"
        log = (self.work / "vllm.log").open("ab")
        console.print(f"starting vLLM on :{port} (scripts/serve.sh, log {self.work / 'vllm.log'})")
        env = child_env(
            VLLM_PORT=str(port),
            VLLM_API_KEY_FILE=str(self.vllm_key_file),
            SERVED_MODEL_NAME="base",
            LORA_MODULES="",
            RUNS_DIR=str(self.work / "runs"),
        )
        self.vllm_proc = subprocess.Popen(
            [str(self.home / "scripts" / "serve.sh")], stdout=log, stderr=log, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.vllm_proc.poll() is not None:
                sys.exit(f"vLLM exited with {self.vllm_proc.returncode}; see {self.work / 'vllm.log'}")
            try:
                if httpx.get(self.vllm_url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        sys.exit(f"vLLM not healthy after {timeout:.0f}s; see {self.work / 'vllm.log'}")

    def start_gateway(self, name: str, buffering: str, home: Path | None = None) -> list[Target]:
        """A gateway (of this checkout, or of the one in `home`); its targets: the plain key, and the policy key
        when this call made this checkout's key file."""
        ports = {k: str(free_port()) for k in ("GATEWAY_HTTPS_PORT", "GATEWAY_HTTP_PORT", "GATEWAY_INTERNAL_PORT")}
        keys = self.work / ("api_keys" if home is None else f"{name}-api_keys")
        certs = self.work / "certs"
        assert self.vllm_url
        env = child_env(
            FTK_ENV_FILE="/nonexistent",
            GATEWAY_PREFIX=str(self.work / name),
            API_KEYS_FILE=str(keys),
            VLLM_API_KEY_FILE=str(self.vllm_key_file),
            VLLM_UPSTREAMS=self.vllm_url.removeprefix("http://"),
            TLS_CERT=str(certs / "server.crt"),
            TLS_KEY=str(certs / "server.key"),
            TLS_CA=str(certs / "ca.crt"),
            GATEWAY_PROXY_BUFFERING=buffering,
            RATE_LIMIT_RPS="1000",
            RATE_LIMIT_BURST="1000",
            **ports,
        )
        if home is not None:  # its own code and templates (this checkout's venvs); its key file made by its own ftk
            venvs = paths.venv_bin("toolkit", "ftk").parents[2]
            env.update(FTK_HOME=str(home), PYTHONPATH=str(home / "toolkit" / "src"), FTK_VENVS=str(venvs))
        policy_key = ""
        if not keys.exists():
            add_key_via_cli(keys, "bench", env=env)
            if home is None:
                policy = ("--models", "base,bench-*", "--max-tokens", "4096", "--n", "2")
                policy_key = add_key_via_cli(keys, "bench-policy", *policy, env=env)
        script = (home or self.home) / "scripts" / "gateway.sh"
        res = subprocess.run(
            [str(script), "--daemon"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            sys.exit(f"gateway {name} did not start:\n{res.stderr}")
        self.gateways.append((script, env))
        url, ca = f"https://localhost:{ports['GATEWAY_HTTPS_PORT']}", str(certs / "ca.crt")
        targets = [Target(name, url, first_active_key(keys), ca)]
        return targets + ([Target("policy", url, policy_key, ca)] if policy_key else [])

    def stop(self) -> None:
        for script, env in self.gateways:
            subprocess.run(
                [str(script), "--stop"],
                env=env,
                capture_output=True,
                check=False,
            )
        if self.vllm_proc and self.vllm_proc.poll() is None:
            os.killpg(self.vllm_proc.pid, signal.SIGTERM)
            try:
                self.vllm_proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.vllm_proc.pid, signal.SIGKILL)


def body(max_tokens: int, stream: bool) -> dict:
    return {
        "model": "base",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": stream,
    }


async def one(client: httpx.AsyncClient, max_tokens: int, stream: bool) -> tuple[float, float]:
    """(time to first content chunk, total time) of one request."""
    start = time.perf_counter()
    first = 0.0
    if stream:
        async with client.stream("POST", "/v1/chat/completions", json=body(max_tokens, True)) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not first and line.startswith("data: {") and '"content"' in line:
                    first = time.perf_counter() - start
    else:
        resp = await client.post("/v1/chat/completions", json=body(max_tokens, False))
        resp.raise_for_status()
        first = time.perf_counter() - start
    return first, time.perf_counter() - start


def client_for(t: Target) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=t.base_url,
        verify=ssl.create_default_context(cafile=t.verify) if isinstance(t.verify, str) else t.verify,
        timeout=300,
        headers={"Authorization": f"Bearer {t.key}"},
        limits=httpx.Limits(max_keepalive_connections=32),
    )


async def throughput(t: Target, n: int, concurrency: int, max_tokens: int, stream: bool) -> float:
    async with client_for(t) as client:
        sem = asyncio.Semaphore(concurrency)

        async def task() -> None:
            async with sem:
                await one(client, max_tokens, stream)

        start = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def measure(targets: list[Target], n: int, concurrency: int, max_tokens: int) -> dict[str, dict[str, float]]:
    ttft: dict[str, list[float]] = {t.name: [] for t in targets}
    latency: dict[str, list[float]] = {t.name: [] for t in targets}
    rps: dict[str, dict[str, list[float]]] = {t.name: {"stream": [], "plain": []} for t in targets}
    clients = {t.name: client_for(t) for t in targets}
    try:
        for c in clients.values():  # warm-up: connections, TLS sessions, vLLM's first request
            await one(c, 4, True)
        for _ in range(n):  # interleaved single requests: TTFT and latency
            for t in targets:
                first, _total = await one(clients[t.name], max_tokens, True)
                ttft[t.name].append(first)
                _first, total = await one(clients[t.name], max_tokens, False)
                latency[t.name].append(total)
    finally:
        for c in clients.values():
            await c.aclose()
    for _ in range(2):  # interleaved throughput rounds
        for t in targets:
            rps[t.name]["stream"].append(await throughput(t, n, concurrency, max_tokens, True))
            rps[t.name]["plain"].append(await throughput(t, n, concurrency, max_tokens, False))
    return {
        t.name: {
            "ttft": statistics.median(ttft[t.name]),
            "latency": statistics.median(latency[t.name]),
            "rps_stream": statistics.median(rps[t.name]["stream"]),
            "rps_plain": statistics.median(rps[t.name]["plain"]),
        }
        for t in targets
    }


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    base = results["direct"]
    table = Table(
        title=f"Gateway overhead: {args.requests} requests per figure, concurrency {args.concurrency}, "
        f"max_tokens {args.max_tokens} (medians; ratio = path / direct)"
    )
    for col in (
        "path",
        "TTFT stream ms",
        "ratio",
        "latency ms",
        "ratio",
        "req/s stream",
        "ratio",
        "req/s plain",
        "ratio",
    ):
        table.add_column(col, justify="right" if col != "path" else "left")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['ttft'] * 1000:.1f}",
            f"{r['ttft'] / base['ttft']:.2f}",
            f"{r['latency'] * 1000:.1f}",
            f"{r['latency'] / base['latency']:.2f}",
            f"{r['rps_stream']:.2f}",
            f"{r['rps_stream'] / base['rps_stream']:.2f}",
            f"{r['rps_plain']:.2f}",
            f"{r['rps_plain'] / base['rps_plain']:.2f}",
        )
    console.print(table)
    gw, pol, buf = results["gateway"], results["policy"], results["buffered"]
    console.print(
        f"gateway TTFT {100 * (gw['ttft'] / base['ttft'] - 1):+.1f}% (goal within 10%), "
        f"streamed throughput {100 * (gw['rps_stream'] / base['rps_stream'] - 1):+.1f}% (goal within 5%); "
        f"with a key policy TTFT {100 * (pol['ttft'] / base['ttft'] - 1):+.1f}%, "
        f"streamed throughput {100 * (pol['rps_stream'] / base['rps_stream'] - 1):+.1f}%; "
        f"with proxy buffering on, the first token waits for the whole answer: TTFT x"
        f"{buf['ttft'] / base['ttft']:.1f}."
    )
    if "baseline" in results:
        old = results["baseline"]
        console.print(
            f"baseline ({args.baseline}): TTFT {100 * (old['ttft'] / base['ttft'] - 1):+.1f}%, streamed throughput "
            f"{100 * (old['rps_stream'] / base['rps_stream'] - 1):+.1f}% against direct, in the same run."
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="scripts/bench.sh gateway_overhead --", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=12, help="requests per figure")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--vllm-url", help="a running vLLM (default: start one)")
    p.add_argument("--vllm-key-file", type=Path, help="its API key file (with --vllm-url)")
    p.add_argument("--baseline", type=Path, help="another checkout whose gateway is measured too (before a change)")
    args = p.parse_args(argv)
    if args.baseline and not (args.baseline / "scripts" / "gateway.sh").is_file():
        p.error(f"--baseline {args.baseline}: no scripts/gateway.sh there; give a checkout of this project")
    with tempfile.TemporaryDirectory(prefix="ftk-bench-gw-") as tmp:
        Path(tmp).chmod(0o755)  # nginx workers (www-data when started as root) write temp files under it
        stack = Stack(Path(tmp), args.vllm_url, args.vllm_key_file)
        try:
            stack.start_vllm()
            key = stack.vllm_key_file.read_text().strip() if stack.vllm_key_file.exists() else ""
            assert stack.vllm_url
            targets = [
                Target("direct", stack.vllm_url, key),
                *stack.start_gateway("gateway", "off"),
                *stack.start_gateway("buffered", "on"),
            ]
            if args.baseline:
                targets += stack.start_gateway("baseline", "off", home=args.baseline.resolve())
            console.print(f"measuring {', '.join(t.name for t in targets)} side by side ...")
            results = asyncio.run(measure(targets, args.requests, args.concurrency, args.max_tokens))
        finally:
            stack.stop()
    report(results, args)


if __name__ == "__main__":
    main()
