"""Talk to a running vLLM server: health, the model list, runtime LoRA load/unload, waiting until healthy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def read_key(path: Path) -> str:
    """The first non-empty line of a key file (VLLM_API_KEY_FILE, API_KEYS_FILE), or '' when missing."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return line.split()[0]
    except OSError:
        return ""
    return ""


class ServerError(Exception):
    """A request failed; the message says why and what to do."""


@dataclass
class VllmClient:
    base_url: str  # http://host:port (no /v1)
    api_key: str = ""
    timeout: float = 30.0
    key_file: Path | None = None  # read at each request while api_key is empty (serve.sh may create it later)

    def _client(self) -> httpx.Client:
        if not self.api_key and self.key_file is not None:
            self.api_key = read_key(self.key_file)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout)

    def healthy(self) -> bool:
        try:
            with self._client() as c:
                return c.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[dict[str, Any]]:
        try:
            with self._client() as c:
                r = c.get("/v1/models")
        except httpx.ConnectError as err:
            raise ServerError(
                f"cannot connect to vLLM at {self.base_url} ({err}); start it with scripts/serve.sh "
                "or fix VLLM_HOST/VLLM_PORT"
            ) from None
        except httpx.HTTPError as err:
            raise ServerError(f"{self.base_url}/v1/models failed: {err}") from None
        if r.status_code == 401:
            raise ServerError(
                f"{self.base_url}/v1/models: 401 unauthorized; the key in VLLM_API_KEY_FILE is not "
                "the one the server was started with"
            )
        if r.status_code != 200:
            raise ServerError(f"{self.base_url}/v1/models: HTTP {r.status_code}: {r.text[:200]}")
        return list(r.json().get("data", []))

    def model_ids(self) -> list[str]:
        return [m.get("id", "") for m in self.models()]

    def _post(self, endpoint: str, body: dict[str, Any]) -> httpx.Response:
        try:
            with self._client() as c:
                return c.post(endpoint, json=body)
        except httpx.ConnectError as err:
            raise ServerError(
                f"cannot connect to vLLM at {self.base_url} ({err}); is scripts/serve.sh running?"
            ) from None
        except httpx.HTTPError as err:
            raise ServerError(f"{self.base_url}{endpoint} failed: {err}") from None

    def complete(self, model: str, prompt: str, max_tokens: int) -> str:
        """One plain completion's text; anything but 200 is a ServerError naming the model and vLLM's reason."""
        r = self._post("/v1/completions", {"model": model, "prompt": prompt, "max_tokens": max_tokens})
        if r.status_code != 200:
            raise ServerError(f"{self.base_url}/v1/completions, model {model!r}: HTTP {r.status_code}: {_detail(r)}")
        return str(r.json()["choices"][0]["text"])

    def load_lora(self, name: str, path: str) -> str:
        r = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        return self._lora_result(r, "load", name, path)

    def unload_lora(self, name: str) -> str:
        r = self._post("/v1/unload_lora_adapter", {"lora_name": name})
        return self._lora_result(r, "unload", name, "")

    def _lora_result(self, r: httpx.Response, action: str, name: str, path: str) -> str:
        if r.status_code == 200:
            return r.text.strip()
        detail = _detail(r)
        if r.status_code == 404 and detail.strip().lower() == "not found":  # no such route
            raise ServerError(
                f"runtime LoRA updating is disabled on {self.base_url} (HTTP 404 on "
                f"/v1/{action}_lora_adapter); set ALLOW_RUNTIME_LORA=true in .env (it sets "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) and restart scripts/serve.sh"
            )
        if r.status_code == 401:
            raise ServerError("401 unauthorized; the key in VLLM_API_KEY_FILE is not the server's")
        if r.status_code == 400 and action == "load":
            raise ServerError(
                f"adapter '{name}' not loaded (HTTP 400: {detail}); a name already loaded must be "
                f"unloaded first (ftk lora unload {name}) or given another name"
            )
        if r.status_code == 404 and action == "load":
            raise ServerError(
                f"adapter '{name}' not loaded (HTTP 404: {detail}); the server cannot read {path}: "
                "give a path that exists on the server's file system"
            )
        if r.status_code == 404 and action == "unload":
            raise ServerError(
                f"adapter '{name}' is not loaded (HTTP 404: {detail}); `ftk lora list` shows the loaded ones"
            )
        raise ServerError(f"{action} of adapter '{name}' failed: HTTP {r.status_code}: {detail}")

    def wait(
        self, expected: list[str], timeout: float, interval: float = 1.0, alive: Any = None
    ) -> tuple[bool, str, float]:
        """Poll until /health answers and /v1/models lists every expected name: (ok, last status, seconds)."""
        start = time.monotonic()
        status = "no answer yet"
        while True:
            elapsed = time.monotonic() - start
            if alive is not None and not alive():
                return False, "the server process exited", elapsed
            if self.healthy():
                try:
                    ids = self.model_ids()
                    missing = [m for m in expected if m not in ids]
                    if not missing:
                        return True, f"healthy; models: {', '.join(ids)}", time.monotonic() - start
                    status = f"/health ok but /v1/models lacks {', '.join(missing)} (has {', '.join(ids)})"
                except ServerError as err:
                    status = str(err)
            else:
                status = f"{self.base_url}/health not answering"
            if elapsed >= timeout:
                return False, status, elapsed
            time.sleep(interval)


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300]
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return str(body)[:300]
