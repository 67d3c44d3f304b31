"""The nginx gateway in front of real vLLM (scripts/serve.sh) on 127.0.0.1: TLS, keys, limits, JSON errors,
internal-only endpoints, streaming and logs; per-key policy (models, caps, own limits) enforced by njs, the audit
fields (model, tokens) and the masked capture. An upstream that goes away and comes back (503 JSON, /health 503,
then 200) is tests/reliability/test_gateway_reliability.py's vLLM killed mid-stream: one vLLM restart, not two."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import run_ftk
from stack import HOME, MODEL, VENVS, Gateway, Vllm, base_env, open_dir, require_real_parts, stop_group

# Keys with a policy (ftk gateway keys add NAME OPTIONS); "main" & co. have none: every model, global caps.
POLICIES = {
    "team-a": ["--models", "base,support*", "--max-tokens", "64", "--n", "2"],
    "team-b": ["--models", "base", "--rps", "1", "--burst", "1"],
}


def make_adapter(out: Path) -> Path:
    """A random LoRA for the default model (the serve venv has torch), served as `support`."""
    code = "import sys; from pathlib import Path; from ftk.hf.random_lora import random_adapter as r; "
    code += "r(Path(sys.argv[1]), Path(sys.argv[2]))"
    subprocess.run(
        [str(VENVS / "serve" / "bin" / "python"), "-c", code, str(MODEL), str(out)],
        check=True,
        capture_output=True,
        env=base_env(PYTHONPATH=str(HOME / "toolkit" / "src")),
        timeout=300,
    )
    return out


def start_capture(gw: Gateway) -> subprocess.Popen:
    """`ftk gateway capture`: the receiver nginx sends the sampled prompts and outputs to."""
    proc = subprocess.Popen(
        [str(VENVS / "toolkit" / "bin" / "ftk"), "gateway", "capture"],
        env=gw.env(),
        cwd=HOME,
        stdout=subprocess.DEVNULL,
        stderr=(gw.dir / "capture.log").open("wb"),
        start_new_session=True,
    )
    for _ in range(300):
        if (gw.prefix / "capture.sock").exists():
            return proc
        assert proc.poll() is None, (gw.dir / "capture.log").read_text()
        time.sleep(0.1)
    pytest.fail("ftk gateway capture did not open its socket")


@pytest.fixture(scope="module")
def stack():
    require_real_parts()
    root = open_dir("ftk-test-gateway-")
    vllm = Vllm(root / "vllm", extra_env={"LORA_MODULES": f"support={make_adapter(root / 'support')}"})
    capture = None
    gw = Gateway(
        root,
        upstreams=f"127.0.0.1:{vllm.port}",
        vllm_key_file=vllm.key_file,
        extra_env={
            "RATE_LIMIT_RPS": "5",
            "RATE_LIMIT_BURST": "5",
            "MAX_CONNS_PER_KEY": "2",
            "CLIENT_MAX_BODY_SIZE": "64k",
            "PROXY_READ_TIMEOUT": "120",
            "GATEWAY_CAPTURE_RATE": "1",
            "GATEWAY_CAPTURE_DIR": str(root / "capture"),
        },
    )
    try:
        vllm.start()
        keys = {name: gw.add_key(name) for name in ("main", "burst", "conn", "old")}
        for name, options in POLICIES.items():
            added = run_ftk("gateway", "keys", "add", name, "-q", "--file", str(gw.keys_file), *options, env=gw.env())
            assert added.returncode == 0, added.stderr
            keys[name] = added.stdout.strip()
        revoke = run_ftk(
            "gateway",
            "keys",
            "revoke",
            "old",
            "--file",
            str(gw.keys_file),
            env=gw.env(),
        )
        assert revoke.returncode == 0, revoke.stderr
        gw.prefix.mkdir(parents=True, exist_ok=True)
        capture = start_capture(gw)
        gw.start()
        yield {"vllm": vllm, "gw": gw, "keys": keys}
    finally:
        gw.stop()
        if capture is not None:
            stop_group(capture)
        vllm.stop()
        shutil.rmtree(root, ignore_errors=True)


def error_of(resp: httpx.Response) -> dict:
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    return body["error"]


def test_tls_handshake_against_the_generated_ca(stack) -> None:
    gw: Gateway = stack["gw"]
    ctx = ssl.create_default_context(cafile=str(gw.ca))
    with (
        socket.create_connection(("127.0.0.1", gw.https_port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        names = [v for _, v in tls.getpeercert()["subjectAltName"]]
        assert "localhost" in names and "127.0.0.1" in names
    # without the CA the certificate is not trusted
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", gw.https_port)) as sock,
    ):
        ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
    assert (gw.dir / "certs" / "server.key").stat().st_mode & 0o777 == 0o600


def _handshake(port: int, version: ssl.TLSVersion) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer old protocols: the server must refuse them
    ctx.minimum_version = ctx.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        ctx.wrap_socket(sock) as tls,
    ):
        return tls.version()


def test_tls_1_1_refused_and_1_2_accepted(stack) -> None:
    port = stack["gw"].https_port
    assert _handshake(port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError, match=r"(?i)protocol version|unsupported protocol|no protocols"):
        _handshake(port, ssl.TLSVersion.TLSv1_1)
    out = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode != 0 and "alert protocol version" in out.stdout + out.stderr


def test_plain_http_redirects_to_https(stack) -> None:
    gw: Gateway = stack["gw"]
    resp = httpx.get(f"http://127.0.0.1:{gw.http_port}/v1/models?x=1", follow_redirects=False)
    assert resp.status_code == 301
    assert resp.headers["location"] == f"https://127.0.0.1:{gw.https_port}/v1/models?x=1"


def test_health_is_public_and_json(stack) -> None:
    with stack["gw"].client() as c:
        resp = c.get("/health")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert resp.headers["strict-transport-security"].startswith("max-age=")


def test_missing_wrong_and_revoked_keys(stack) -> None:
    gw: Gateway = stack["gw"]
    with gw.client() as c:
        missing = c.get("/v1/models")
        wrong = c.get(
            "/v1/models",
            headers={"Authorization": "Bearer sk-ftk-not-a-real-key-000000"},
        )
        revoked = c.get("/v1/models", headers={"Authorization": f"Bearer {stack['keys']['old']}"})
    assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "invalid_api_key"
    assert revoked.status_code == 403 and error_of(revoked)["code"] == "revoked_api_key"


def test_reload_applies_key_changes_before_it_returns(stack) -> None:
    """No sleep after --reload: the very next request meets the new keys (a revoked key must not linger)."""
    gw: Gateway = stack["gw"]
    for i in range(3):
        key = gw.add_key(f"rotating-{i}")
        reload = gw.script("--reload")
        assert "new workers" in reload.stdout + reload.stderr, reload.stdout + reload.stderr
        with gw.client(key) as c:
            assert c.get("/v1/models").status_code == 200, f"key added, round {i}"
        revoke = run_ftk("gateway", "keys", "revoke", f"rotating-{i}", "--file", str(gw.keys_file), env=gw.env())
        assert revoke.returncode == 0, revoke.stderr
        gw.script("--reload")
        with gw.client(key) as c:
            refused = c.get("/v1/models")
        assert refused.status_code == 403 and error_of(refused)["code"] == "revoked_api_key", f"round {i}"


def test_openai_sdk_through_the_gateway(stack) -> None:
    gw: Gateway = stack["gw"]
    client = openai.OpenAI(
        base_url=gw.base_url + "/v1",
        api_key=stack["keys"]["main"],
        http_client=httpx.Client(verify=ssl.create_default_context(cafile=str(gw.ca))),
        max_retries=0,
    )
    assert "base" in [m.id for m in client.models.list().data]
    raw = client.chat.completions.with_raw_response.create(
        model="base",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
        temperature=0,
    )
    assert len(raw.headers["x-request-id"]) == 32
    assert raw.parse().choices[0].message.content
    # the client's key is not vLLM's: the gateway replaced the Authorization header
    direct = httpx.get(
        stack["vllm"].url + "/v1/models",
        headers={"Authorization": f"Bearer {stack['keys']['main']}"},
    )
    assert direct.status_code == 401


def test_rate_limit_429_json(stack) -> None:
    gw: Gateway = stack["gw"]
    with gw.client(stack["keys"]["burst"]) as c:
        codes = [c.get("/v1/models") for _ in range(20)]
        other = c.get("/v1/models", headers={"Authorization": f"Bearer {stack['keys']['main']}"})
    limited = [r for r in codes if r.status_code == 429]
    assert limited and codes[0].status_code == 200
    assert error_of(limited[0])["code"] == "rate_limit_exceeded"
    assert limited[0].headers["retry-after"]
    assert other.status_code == 200, "limits are per key"


def test_concurrent_requests_per_key_capped_429(stack) -> None:
    """MAX_CONNS_PER_KEY=2: a third request while two streams of the same key run is refused with 429 JSON."""
    gw: Gateway = stack["gw"]
    body = {
        "model": "base",
        "messages": [{"role": "user", "content": "Tell me a long story."}],
        "max_tokens": 200,
        "stream": True,
        "ignore_eos": True,
    }
    with (
        gw.client(stack["keys"]["conn"]) as c1,
        gw.client(stack["keys"]["conn"]) as c2,
        c1.stream("POST", "/v1/chat/completions", json=body) as s1,
        c2.stream("POST", "/v1/chat/completions", json=body) as s2,
    ):
        assert s1.status_code == 200 and s2.status_code == 200
        with gw.client(stack["keys"]["conn"]) as c3:
            third = c3.get("/v1/models")
        with gw.client(stack["keys"]["main"]) as other:
            other_key = other.get("/v1/models")
    assert third.status_code == 429 and error_of(third)["code"] == "rate_limit_exceeded"
    assert other_key.status_code == 200


def test_oversize_body_413_json(stack) -> None:
    gw: Gateway = stack["gw"]
    big = {
        "model": "base",
        "messages": [{"role": "user", "content": "x" * 100_000}],
        "max_tokens": 1,
    }
    with gw.client(stack["keys"]["main"]) as c:
        resp = c.post("/v1/chat/completions", json=big)
        small = c.post(
            "/v1/chat/completions",
            json={**big, "messages": [{"role": "user", "content": "x" * 50_000}]},
        )
    assert resp.status_code == 413 and error_of(resp)["code"] == "request_too_large"
    assert small.status_code != 413  # vLLM itself answers (a prompt longer than the context: 400)


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/v1/load_lora_adapter",
        "/v1/unload_lora_adapter",
        "/tokenize",
        "/detokenize",
        "/version",
        "/docs",
        "/openapi.json",
        "/nginx_status",
    ],
)
def test_admin_endpoints_only_on_the_internal_listener(stack, path: str) -> None:
    gw: Gateway = stack["gw"]
    with gw.client(stack["keys"]["main"]) as c:
        public = c.post(path, json={}) if "lora" in path or "tokenize" in path else c.get(path)
    assert public.status_code == 404 and error_of(public)["code"] == "not_found"
    if path in ("/metrics", "/version", "/nginx_status"):
        internal = httpx.get(gw.internal_url + path)
        assert internal.status_code == 200, internal.text
        if path == "/metrics":
            assert "vllm:num_requests_running" in internal.text


def test_internal_listener_reaches_vllm_with_the_shared_key(stack) -> None:
    resp = httpx.get(stack["gw"].internal_url + "/v1/models")
    assert resp.status_code == 200 and resp.json()["data"][0]["id"] == "base"


def test_first_streamed_chunk_arrives_long_before_the_end(stack) -> None:
    gw: Gateway = stack["gw"]
    body = {
        "model": "base",
        "messages": [{"role": "user", "content": "Tell me a long story about a cat."}],
        "max_tokens": 96,
        "stream": True,
        "ignore_eos": True,
        "temperature": 0,
    }
    arrivals: list[float] = []
    with gw.client(stack["keys"]["main"]) as c:
        start = time.monotonic()
        with c.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= 50
    first, last = arrivals[0], arrivals[-1]
    assert last > 1.0, "generation too short to tell streaming from buffering"
    assert first < 0.3 * last, f"first chunk at {first:.2f}s, last at {last:.2f}s: the gateway buffers"
    # chunks keep arriving spread over the generation, not in one burst at the end
    assert arrivals[len(arrivals) // 2] < 0.8 * last


def test_client_disconnect_is_passed_on(stack) -> None:
    gw: Gateway = stack["gw"]
    body = {
        "model": "base",
        "messages": [{"role": "user", "content": "Count to one thousand."}],
        "max_tokens": 400,
        "stream": True,
        "ignore_eos": True,
    }
    with (
        gw.client(stack["keys"]["main"]) as c,
        c.stream("POST", "/v1/chat/completions", json=body) as resp,
    ):
        for _ in resp.iter_lines():
            break
    # vLLM sees the abort: nothing keeps running
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        metrics = httpx.get(gw.internal_url + "/metrics").text
        running = [ln for ln in metrics.splitlines() if ln.startswith("vllm:num_requests_running")]
        if running and all(float(ln.split()[-1]) == 0 for ln in running):
            break
        time.sleep(0.5)
    else:
        pytest.fail("vLLM kept generating after the client went away")


def sdk(stack, name: str) -> openai.OpenAI:
    gw: Gateway = stack["gw"]
    return openai.OpenAI(
        base_url=gw.base_url + "/v1",
        api_key=stack["keys"][name],
        http_client=httpx.Client(verify=ssl.create_default_context(cafile=str(gw.ca))),
        max_retries=0,
    )


def audit(stack, request_id: str) -> dict:
    """The access-log line of one request (nginx writes it once the response is done)."""
    gw: Gateway = stack["gw"]
    for _ in range(50):
        for line in gw.access_log.read_text().splitlines():
            rec = json.loads(line)
            if rec["request_id"] == request_id:
                return rec
        time.sleep(0.1)
    pytest.fail(f"no access-log line for request {request_id}")


HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def test_each_key_lists_and_uses_only_its_models(stack) -> None:
    a, b, main = sdk(stack, "team-a"), sdk(stack, "team-b"), sdk(stack, "main")
    assert sorted(m.id for m in a.models.list().data) == ["base", "support"]
    assert [m.id for m in b.models.list().data] == ["base"]
    assert sorted(m.id for m in main.models.list().data) == ["base", "support"], "no policy: every model"
    answer = a.chat.completions.create(model="support", messages=HELLO, max_tokens=4, temperature=0)
    assert answer.model == "support" and answer.choices[0].message.content is not None


def test_a_key_asking_for_another_keys_adapter_is_403_before_vllm(stack) -> None:
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk(stack, "team-b").chat.completions.create(model="support", messages=HELLO, max_tokens=4)
    err = refused.value.body
    assert err["code"] == "model_not_allowed" and err["param"] == "model", err
    assert "'support'" in err["message"] and "allowed models: base" in err["message"]
    rec = audit(stack, refused.value.response.headers["x-request-id"])
    assert rec["status"] == 403 and rec["upstream"] == "" and rec["model"] == "support", "vLLM never saw it"


@pytest.mark.parametrize(
    ("key", "extra", "field", "allowed"),
    [
        ("team-a", {"n": 3}, "n", "n <= 2"),
        ("team-a", {"max_tokens": 65}, "max_tokens", "max_tokens <= 64"),
        ("team-a", {"max_completion_tokens": 1000}, "max_completion_tokens", "max_completion_tokens <= 64"),
        ("main", {"n": 1000}, "n", "n <= 8"),  # the gateway-wide cap (GATEWAY_MAX_N) for keys without their own
        ("main", {"best_of": 9}, "best_of", "best_of <= 8"),
    ],
)
def test_a_field_above_the_cap_is_400_naming_field_and_allowed_value(stack, key, extra, field, allowed) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(stack, key).chat.completions.create(model="base", messages=HELLO, extra_body=extra)
    err = refused.value.body
    assert err["code"] == "cap_exceeded" and err["param"] == field and allowed in err["message"], err


def test_too_many_images_is_400_and_a_body_that_is_not_json_too(stack) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "look"}, *[image] * 17]}]
    with stack["gw"].client(stack["keys"]["main"]) as c:
        many = c.post("/v1/chat/completions", json={"model": "base", "messages": messages})
        broken = c.post("/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert many.status_code == 400 and error_of(many)["param"] == "images" and "images <= 16" in many.text
    assert broken.status_code == 400 and error_of(broken)["code"] == "invalid_json"


def test_a_keys_own_rate_limit_is_429_and_leaves_other_keys_alone(stack) -> None:
    """team-b: 1 request/s with a burst of 1 (the gateway-wide limit is 5/s, burst 5)."""
    time.sleep(2.1)  # what team-b sent before has drained
    with stack["gw"].client(stack["keys"]["team-b"]) as c:
        codes = [c.get("/v1/models").status_code for _ in range(4)]
        other = c.get("/v1/models", headers={"Authorization": f"Bearer {stack['keys']['team-a']}"})
    assert codes[:2] == [200, 200] and codes[2:] == [429, 429], codes
    assert other.status_code == 200


def test_a_keys_max_tokens_is_sent_when_the_request_names_none(stack) -> None:
    answer = sdk(stack, "team-a").chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": "Tell a long story."}],
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert answer.usage.completion_tokens == 64 and answer.choices[0].finish_reason == "length"


def test_audit_line_carries_the_token_counts_the_client_got(stack) -> None:
    client = sdk(stack, "team-a")
    raw = client.chat.completions.with_raw_response.create(model="base", messages=HELLO, max_tokens=8, temperature=0)
    answer = raw.parse()
    rec = audit(stack, raw.headers["x-request-id"])
    assert rec["key_id"] == hashlib.sha256(stack["keys"]["team-a"].encode()).hexdigest()[:12]
    assert (rec["model"], rec["status"], rec["remote_addr"]) == ("base", 200, "127.0.0.1")
    assert (rec["prompt_tokens"], rec["completion_tokens"]) == (
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
    )
    assert rec["request_time"] > 0 and rec["time"]


def stream(client: openai.OpenAI, **extra) -> tuple[list, str]:
    raw = client.chat.completions.with_raw_response.create(
        model="base", messages=HELLO, max_tokens=8, temperature=0, stream=True, **extra
    )
    return list(raw.parse()), raw.headers["x-request-id"]


def test_streams_are_audited_without_changing_what_the_client_asked_for(stack) -> None:
    client = sdk(stack, "main")
    plain, plain_id = stream(client)
    asked, asked_id = stream(client, stream_options={"include_usage": True})
    assert all(c.usage is None for c in plain) and all(c.choices for c in plain), "no usage chunk was asked for"
    text = "".join(c.choices[0].delta.content or "" for c in plain)
    assert text == "".join(c.choices[0].delta.content or "" for c in asked if c.choices)
    usage = asked[-1].usage
    assert usage is not None and not asked[-1].choices, "the client that asked gets its usage chunk"
    for rid in (plain_id, asked_id):
        rec = audit(stack, rid)
        assert (rec["prompt_tokens"], rec["completion_tokens"]) == (usage.prompt_tokens, usage.completion_tokens)


def test_capture_masks_personal_data_before_writing(stack) -> None:
    pii = "I am jane.doe@example.com, phone +1 415-555-2671, card 4111 1111 1111 1111, SSN 123-45-6789."
    raw = sdk(stack, "team-a").chat.completions.with_raw_response.create(
        model="base", messages=[{"role": "user", "content": pii}], max_tokens=4
    )
    rid = raw.headers["x-request-id"]
    folder = stack["gw"].dir / "capture"
    for _ in range(50):
        lines = [json.loads(ln) for f in folder.glob("capture-*.jsonl") for ln in f.read_text().splitlines()]
        mine = [ln for ln in lines if ln["request_id"] == rid]
        if mine:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"request {rid} was not captured; {stack['gw'].dir / 'capture.log'}")
    prompt = mine[0]["prompt"]
    assert "<EMAIL>" in prompt and "<PHONE>" in prompt and "<CARD>" in prompt and "<ID>" in prompt, prompt
    for f in folder.glob("capture-*.jsonl"):
        assert f.stat().st_mode & 0o777 == 0o600


def test_no_key_in_any_log(stack) -> None:
    """Runs last: every request above went through; neither client keys nor vLLM's key nor unmasked personal data
    were written anywhere (logs, captures)."""
    gw: Gateway = stack["gw"]
    secrets = [*stack["keys"].values(), stack["vllm"].key_file.read_text().strip()]
    secrets += ["jane.doe@example.com", "415-555-2671", "4111 1111 1111 1111", "123-45-6789"]
    logs = [*sorted((gw.prefix / "logs").glob("*")), stack["vllm"].log, *sorted((gw.dir / "capture").glob("*"))]
    assert gw.access_log.stat().st_size > 0
    for log in logs:
        text = log.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a key appears in {log}"
