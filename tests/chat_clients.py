"""OpenAI SDK clients and streaming load for the tests that send load through a TLS gateway to vLLM replicas
(tests/integration and tests/compose import it as `from chat_clients import ...`: pytest puts tests/, the folder
of tests/conftest.py, on sys.path)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import openai


def gateway_client(base_url: str, ca: Path | str, key: str) -> openai.OpenAI:
    """The SDK against base_url (ending in /v1) trusting only the CA file ca; no retries, so a test sees every
    failure the gateway returns."""
    http = httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=120)
    return openai.OpenAI(base_url=base_url, api_key=key, http_client=http, max_retries=0)


def stream(client: openai.OpenAI, started: list[bool], i: int) -> str:
    """One streamed chat completion of the base model; started[i] turns true with the first chunk. Returns '' or
    the error."""
    try:
        chunks = client.chat.completions.create(
            model="base", messages=[{"role": "user", "content": f"Count to ten, {i}."}], max_tokens=32, stream=True
        )
        for _ in chunks:
            started[i] = True
        return ""
    except (openai.APIError, httpx.HTTPError) as err:
        return f"{type(err).__name__}: {err}"


def streams_with_a_kill(client: openai.OpenAI, kill: Callable[[], None]) -> tuple[list[str], datetime]:
    """24 streams, 8 at a time, and kill() (of one replica) once 6 have begun: each stream's error ('' when it
    completed) and when kill() ran (UTC, to the second, as the gateway's log writes time)."""
    started = [False] * 24
    done = threading.Event()
    killed_at: list[datetime] = []
    with ThreadPoolExecutor(8) as pool:
        results = pool.map(lambda i: stream(client, started, i), range(24))

        def kill_when_busy() -> None:
            while sum(started) < 6 and not done.is_set():
                time.sleep(0.05)
            killed_at.append(datetime.now(timezone.utc).replace(microsecond=0))
            kill()

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        errors = list(results)
        done.set()
        killer.join()
    return errors, killed_at[0]


def assert_only_streams_running_on_the_victim_broke(
    errors: list[str], access_log: list[dict], victim: str, killed_at: datetime
) -> None:
    """A request no replica had answered goes to another one (proxy_next_upstream ... non_idempotent), never back
    to the client as a 5xx; only streams the killed replica (victim, HOST:PORT) had begun answering may break.
    vLLM sends a stream's header before its first token, and nginx holds that header until the first chunk: a
    stream cut in between breaks at the client before anything arrived, so the gateway's log, not the client,
    tells which streams were running on the victim."""
    answered = [(i, e) for i, e in enumerate(errors) if e and "Error code: 5" in e]
    assert not answered, f"the gateway answered an error instead of trying the other replica: {answered}"
    begun = [
        r for r in access_log
        if datetime.fromisoformat(r["time"]) >= killed_at
        and r["upstream"].split(", ")[-1] == victim and r["upstream_status"].split(", ")[-1] == "200"
    ]  # fmt: skip
    broken = [(i, e) for i, e in enumerate(errors) if e]
    assert len(broken) <= len(begun), f"more streams broke than ran on the killed replica ({len(begun)}): {broken}"
    assert len(broken) < 8, broken  # at most the streams that were running on the victim
