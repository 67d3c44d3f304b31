"""OpenAI SDK clients for the endpoints under evaluation: greedy answers, and the optional judge's grades."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from ftk.eval.heldout import Item

JUDGE_PROMPT = (
    "Grade the ANSWER against the REFERENCE for the QUESTION from 0 (wrong) to 10 (as good as the reference). "
    "Reply with the number only.\nQUESTION: {q}\nREFERENCE: {r}\nANSWER: {a}"
)


@dataclass(frozen=True)
class Endpoint:
    name: str  # the column/row label in the report
    model: str  # the model name the server answers to (a served name or a LoRA adapter's name)
    base_url: str  # ends in /v1: the gateway or vLLM directly
    api_key: str = ""
    ca: Path | None = None

    def client(self, timeout: float) -> openai.OpenAI:
        verify: ssl.SSLContext | bool = True
        if self.ca is not None:
            verify = ssl.create_default_context(cafile=str(self.ca))
        http = httpx.Client(verify=verify, timeout=timeout)
        return openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key or "none", http_client=http, max_retries=1, timeout=timeout
        )


def answer(client: openai.OpenAI, endpoint: Endpoint, item: Item, max_tokens: int) -> str:
    messages: list[dict[str, str]] = [{"role": "system", "content": item.system}] if item.system else []
    messages.append({"role": "user", "content": item.prompt})
    reply = client.chat.completions.create(
        model=endpoint.model,
        messages=messages,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=max_tokens,
        seed=0,
    )
    return (reply.choices[0].message.content or "").strip()


def judge(client: openai.OpenAI, model: str, item: Item, text: str) -> float:
    """The judge model's grade / 10; 0 when it answers no number."""
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": JUDGE_PROMPT.format(q=item.prompt, r=item.reference, a=text)}],
        temperature=0,
        max_tokens=8,
    )
    match = re.search(r"\d+(\.\d+)?", reply.choices[0].message.content or "")
    return min(float(match.group(0)), 10.0) / 10.0 if match else 0.0
