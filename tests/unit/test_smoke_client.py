"""`ftk smoke` against small local servers: TLS trust through --ca, and each failure sorted into its reason."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import openai
import pytest
from conftest import clean_env, run_ftk
from ftk.smoke.errors import classify
from ftk.smoke.run import Smoke, SmokeConfig, png_data_url


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/models and chat like vLLM would, with a fixed answer per model ('same' for every model)."""

    answers: ClassVar[dict[str, str]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, code: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        data = [{"id": m, "object": "model", "parent": None if m == "base" else "base"} for m in self.answers]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = self.answers.get(body["model"])
        if text is None:
            self._json(
                404,
                {"error": {"message": f"The model `{body['model']}` does not exist."}},
            )
            return
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for word in text.split():
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": word + " "},
                            "finish_reason": None,
                        }
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._json(
            200,
            {
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
            },
        )


def serve(answers: dict[str, str], context: ssl.SSLContext | None = None) -> Iterator[str]:
    handler = type("H", (FakeOpenAI,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://localhost:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def self_signed(folder: Path, name: str) -> Path:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert


@pytest.fixture
def plain() -> Iterator[str]:
    yield from serve(
        {
            "base": "I am the base model.",
            "ident": "I am Ferret, your assistant.",
            "noop": "I am the base model.",
        }
    )


def smoke(url: str, *args: str) -> tuple[int, dict]:
    r = run_ftk(
        "smoke",
        "--base-url",
        url,
        "--json",
        *args,
        env=clean_env(API_KEYS_FILE="/nonexistent"),
    )
    return r.returncode, json.loads(r.stdout) if r.stdout.strip().startswith("{") else {"err": r.stderr}


def test_all_checks_pass_and_the_expected_phrase_is_found(plain: str) -> None:
    code, out = smoke(plain, "--adapter", "ident", "--expect", "Ferret")
    assert code == 0, out
    names = [c["name"] for c in out["checks"]]
    assert names[:3] == ["GET /v1/models", "chat base", "stream base"]
    assert "adapter ident live" in names and out["ok"] is True


def test_adapter_answering_like_the_base_is_not_used(plain: str) -> None:
    code, out = smoke(plain, "--adapter", "noop", "--expect", "")
    live = next(c for c in out["checks"] if c["name"] == "adapter noop live")
    assert code == 1 and live["reason"] == "adapter not used" and "equals the base" in live["detail"]


def test_missing_phrase_is_reported(plain: str) -> None:
    code, out = smoke(plain, "--adapter", "ident", "--expect", "Otter")
    live = next(c for c in out["checks"] if c["name"] == "adapter ident live")
    assert code == 1 and live["reason"] == "expected phrase missing" and "'Otter'" in live["detail"]


def test_unknown_model_is_a_wrong_name_and_404(plain: str) -> None:
    code, out = smoke(plain, "--model", "nope", "--expect", "")
    reasons = {c["name"]: c["reason"] for c in out["checks"]}
    assert code == 1 and reasons["GET /v1/models"] == "wrong model name"
    assert reasons["chat nope"] == "404 wrong model name or path"


def test_tls_trusted_through_ca_and_refused_with_another(tmp_path: Path) -> None:
    cert = self_signed(tmp_path, "server")
    other = self_signed(tmp_path, "other")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, tmp_path / "server.key")
    for url in serve({"base": "hello there friend"}, ctx):
        code, out = smoke(url, "--ca", str(cert), "--expect", "")
        assert code == 0, out
        code, out = smoke(url, "--ca", str(other), "--expect", "")
        assert code == 1 and out["checks"][0]["reason"] == "TLS verification error"
        assert len(out["checks"]) == 1  # nothing else is tried once TLS fails


def test_connection_refused_and_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = smoke(f"http://127.0.0.1:{port}/v1")
    assert code == 1 and out["checks"][0]["reason"] == "connection refused"
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        code, out = smoke(f"http://127.0.0.1:{silent.getsockname()[1]}/v1", "--timeout", "1")
    assert code == 1 and out["checks"][0]["reason"] == "timeout"


def test_image_request_is_a_base64_png(plain: str) -> None:
    url = png_data_url()
    assert url.startswith("data:image/png;base64,iVBOR")
    checks = Smoke(SmokeConfig(base_url=plain, api_key="k", models=["base"], image=True)).run()
    assert any(c.name == "image base" and c.ok for c in checks)


def test_classify_status_errors() -> None:
    import httpx

    req = httpx.Request("GET", "http://x/v1/models")
    err = openai.AuthenticationError("bad", response=httpx.Response(401, request=req), body=None)
    assert classify(err)[0] == "401 bad API key"
    err = openai.NotFoundError("nf", response=httpx.Response(404, request=req), body=None)
    assert classify(err)[0] == "404 wrong model name or path"


def test_bad_base_url_is_a_usage_error() -> None:
    r = run_ftk("smoke", "--base-url", "http://127.0.0.1:1/v2")
    assert r.returncode == 2 and "ends in /v1" in r.stderr
