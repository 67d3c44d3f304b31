"""OpenAI SDK clients for the tests that send load through a TLS gateway (tests/integration and tests/compose import
it as `from chat_clients import ...`: pytest puts tests/, the folder of tests/conftest.py, on sys.path)."""

from __future__ import annotations

import ssl
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
