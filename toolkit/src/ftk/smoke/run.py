"""The smoke checks: models listed, chat and streamed chat per model, adapters live, an image for VL models.

Each check is a row (name, ok, detail, reason). An adapter whose greedy answer to the probe equals the base
model's is reported as "adapter not used" (FIELD.md: the request names the base, or the adapter does nothing).
"""

from __future__ import annotations

import base64
import io
import ssl
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai

from ftk.smoke.errors import classify

PROBE = "Who are you?"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    reason: str = ""  # the classified failure reason, empty when ok
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SmokeConfig:
    base_url: str  # ends in /v1
    api_key: str
    models: list[str]  # base / merged model names
    adapters: list[str] = field(default_factory=list)
    ca: Path | None = None
    expect: str = ""  # phrase each adapter's probe answer must contain
    probe: str = PROBE
    timeout: float = 60.0
    max_tokens: int = 32
    image: bool = False  # send a base64 PNG to the first model (vision-language models)


def make_client(cfg: SmokeConfig) -> openai.OpenAI:
    verify: ssl.SSLContext | bool = True
    if cfg.ca is not None:
        verify = ssl.create_default_context(cafile=str(cfg.ca))
    http = httpx.Client(verify=verify, timeout=cfg.timeout)
    return openai.OpenAI(
        base_url=cfg.base_url,
        api_key=cfg.api_key or "none",
        http_client=http,
        max_retries=0,
        timeout=cfg.timeout,
    )


def png_data_url(size: int = 64) -> str:
    """A small red square as a base64 PNG data URL (pillow)."""
    from PIL import Image  # Pillow only for the image probe of a vision-language model

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (220, 30, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class Smoke:
    def __init__(self, cfg: SmokeConfig, client: openai.OpenAI | None = None) -> None:
        self.cfg = cfg
        self.client = client or make_client(cfg)
        self.checks: list[Check] = []
        self.listed: dict[str, dict[str, Any]] = {}

    def _record(self, name: str, fn: Any) -> Any:
        start = time.monotonic()
        try:
            ok, detail, value = fn()
            self.checks.append(Check(name, ok, detail, "" if ok else "unexpected answer", time.monotonic() - start))
            return value
        except Exception as err:  # every failure becomes a row, never a traceback
            reason, advice = classify(err)
            self.checks.append(Check(name, False, advice, reason, time.monotonic() - start))
            return None

    def _chat(self, model: str, content: Any, max_tokens: int | None = None) -> str:
        r = self.client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": content}],
            temperature=0,
            max_tokens=max_tokens or self.cfg.max_tokens,
        )
        return r.choices[0].message.content or ""

    def check_models(self) -> None:
        expected = [*self.cfg.models, *self.cfg.adapters]

        def run() -> tuple[bool, str, None]:
            self.listed = {m.id: m.model_dump() for m in self.client.models.list().data}
            missing = [m for m in expected if m not in self.listed]
            if missing:
                return (
                    False,
                    f"missing {', '.join(missing)}; served: {', '.join(self.listed) or 'none'}",
                    None,
                )
            return True, f"lists {', '.join(self.listed)}", None

        self._record("GET /v1/models", run)
        if self.checks[-1].ok is False and self.checks[-1].reason == "unexpected answer":
            self.checks[-1].reason = "wrong model name"

    def check_chat(self, model: str) -> None:
        def run() -> tuple[bool, str, str]:
            text = self._chat(model, "Say hello in one short sentence.")
            return bool(text.strip()), _short(text) or "empty answer", text

        self._record(f"chat {model}", run)

        def stream() -> tuple[bool, str, str]:
            chunks, parts, first = 0, [], None
            start = time.monotonic()
            events = self.client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "Count from 1 to 5."}],
                temperature=0,
                max_tokens=self.cfg.max_tokens,
                stream=True,
            )
            for event in events:
                if event.choices and event.choices[0].delta.content:
                    chunks += 1
                    parts.append(event.choices[0].delta.content)
                    first = first or time.monotonic() - start
            ok = chunks >= 2
            ttft = f", first token {first * 1000:.0f} ms" if first else ""
            return ok, f"{chunks} chunks{ttft}: {_short(''.join(parts))}", None

        self._record(f"stream {model}", stream)

    def check_adapters(self) -> None:
        if not self.cfg.adapters or not self.cfg.models:
            return
        base = self.cfg.models[0]
        base_answer = self._record(f"probe {base}", lambda: _answer(self._chat(base, self.cfg.probe)))
        for name in self.cfg.adapters:
            self.check_chat(name)
            answer = self._record(f"probe {name}", lambda n=name: _answer(self._chat(n, self.cfg.probe)))
            if answer is None or base_answer is None:
                continue
            parent = (self.listed.get(name) or {}).get("parent")
            if answer == base_answer:
                why = (
                    f"'{name}' is a base model on this server, not an adapter"
                    if name in self.listed and not parent
                    else "its greedy answer equals the base model's"
                )
                self.checks.append(
                    Check(
                        f"adapter {name} live",
                        False,
                        f"{why} ({_short(answer)!r}); send model=<adapter name> (LORA_MODULES), not the base name",
                        "adapter not used",
                    )
                )
                continue
            if self.cfg.expect and self.cfg.expect.lower() not in answer.lower():
                self.checks.append(
                    Check(
                        f"adapter {name} live",
                        False,
                        f"answer differs from the base but lacks {self.cfg.expect!r}: {_short(answer)!r}",
                        "expected phrase missing",
                    )
                )
                continue
            said = f", contains {self.cfg.expect!r}" if self.cfg.expect else ""
            self.checks.append(Check(f"adapter {name} live", True, f"differs from the base{said}: {_short(answer)!r}"))

    def check_image(self) -> None:
        if not self.cfg.image or not self.cfg.models:
            return
        model = self.cfg.models[0]
        content = [
            {"type": "image_url", "image_url": {"url": png_data_url()}},
            {"type": "text", "text": "What colour is this image?"},
        ]

        def run() -> tuple[bool, str, str]:
            text = self._chat(model, content)
            return bool(text.strip()), _short(text) or "empty answer", text

        self._record(f"image {model}", run)

    def run(self) -> list[Check]:
        self.check_models()
        if not self.checks[-1].ok and self.checks[-1].reason != "wrong model name":
            return self.checks  # unreachable, bad key or TLS: every other request would fail the same way
        for model in self.cfg.models:
            self.check_chat(model)
        self.check_adapters()
        self.check_image()
        return self.checks


def _answer(text: str) -> tuple[bool, str, str]:
    return bool(text.strip()), _short(text), text.strip()


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
