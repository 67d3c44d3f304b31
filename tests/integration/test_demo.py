"""`make demo` end to end (scripts/demo.sh), as a user runs it (the opt-in parts off), once: slow (training, vLLM),
so one run, then a re-run that reuses every stage, then `--down`. Everything goes to a temporary RUNS_DIR and free
ports. The opt-in parts have their own tests: DPO on CPU through train.sh (test_train_preference.py), the merge
(test_merge_text.py) and the eval gate on real vLLM (test_serve_vllm.py)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
from stack import HOME, MODEL, base_env, free_port, open_dir, require_real_parts

DEMO = HOME / "scripts" / "demo.sh"


@pytest.fixture(scope="module")
def demo():
    require_real_parts()
    root = open_dir("ftk-test-demo-")  # traversable by nginx's workers
    vllm_port = free_port()
    env = base_env(
        RUNS_DIR=str(root / "runs"),
        MERGED_MODEL_PATH=str(root / "merged"),
        MODEL_ID=str(MODEL),
        TLS_CERT=str(root / "certs" / "server.crt"),
        TLS_KEY=str(root / "certs" / "server.key"),
        TLS_CA=str(root / "certs" / "ca.crt"),
        VLLM_PORT=str(vllm_port),
        DEMO_MERGED_PORT=str(free_port()),
        GATEWAY_HTTPS_PORT=str(free_port()),
        GATEWAY_HTTP_PORT=str(free_port()),
        GATEWAY_INTERNAL_PORT=str(free_port()),
        GATEWAY_METRICS_PORT=str(free_port()),
        PROMETHEUS_PORT=str(free_port()),
        ASSISTANT_NAME="Ferret",
    )
    try:
        first = subprocess.run(
            [str(DEMO)],
            capture_output=True,
            text=True,
            env=env,
            timeout=3000,
            check=False,
        )
        yield {"env": env, "first": first, "dir": root / "runs" / "demo"}
    finally:
        subprocess.run(
            [str(DEMO), "--down"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_demo_ends_ok_and_prints_how_to_use_it(demo) -> None:
    res = demo["first"]
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    lines = res.stdout.strip().splitlines()
    assert lines[-1].startswith("DEMO OK")
    for stage in ("model", "dataset", "train", "keys", "serve", "gateway", "monitor", "smoke", "access"):
        assert any(line.split()[:2] == [stage, "done"] for line in lines), stage
    # the opt-in parts are off and say how to turn them on
    for stage in ("merge", "align", "merged", "eval"):
        assert any(line.split()[:2] == [stage, "off"] and "DEMO_FULL=true" in line for line in lines), stage
    assert not (demo["dir"] / "eval").exists()
    assert "curl --cacert" in res.stdout and "openai.OpenAI(" in res.stdout
    for stage in ("train", "serve", "smoke"):
        assert (demo["dir"] / "logs" / f"{stage}.log").stat().st_size > 0
    access = (demo["dir"] / "logs" / "access.log").read_text()
    assert "base-only" in access and "403" in access and "Gateway usage" in access, access


def sdk(ep: dict, key_file: Path) -> openai.OpenAI:
    """An OpenAI client for the demo's endpoint (its CA) with the key in key_file."""
    http = httpx.Client(verify=ssl.create_default_context(cafile=ep["ca_cert"]))
    return openai.OpenAI(base_url=ep["base_url"], api_key=key_file.read_text().strip(), http_client=http, max_retries=0)


def test_endpoint_file_and_a_real_client(demo) -> None:
    endpoint_file = demo["dir"] / "endpoint.json"
    assert endpoint_file.stat().st_mode & 0o777 == 0o600
    ep = json.loads(endpoint_file.read_text())
    assert set(ep["models"]) == {"base", "identity"}
    key_file = Path(ep["api_key_file"])
    assert key_file.stat().st_mode & 0o777 == 0o600
    client = sdk(ep, key_file)
    reply = client.chat.completions.create(
        model="identity",
        messages=[{"role": "user", "content": "Who are you?"}],
        max_tokens=48,
        temperature=0,
    )
    assert "Ferret" in reply.choices[0].message.content


def test_the_second_key_sees_and_uses_only_the_base_model(demo) -> None:
    ep = json.loads((demo["dir"] / "endpoint.json").read_text())
    key_file = demo["dir"] / "secrets" / "base_only_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    client = sdk(ep, key_file)
    assert [m.id for m in client.models.list()] == ["base"]
    with pytest.raises(openai.PermissionDeniedError, match="identity"):
        client.chat.completions.create(model="identity", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": "Hi"}], max_tokens=1000)
    assert (
        client.chat.completions.create(model="base", messages=[{"role": "user", "content": "Hi"}], max_tokens=8)
        .choices[0]
        .message.content
    )


def test_rerun_reuses_every_stage(demo) -> None:
    res = subprocess.run(
        [str(DEMO)],
        capture_output=True,
        text=True,
        env=demo["env"],
        timeout=900,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = res.stdout.strip().splitlines()
    assert lines[-1].startswith("DEMO OK")
    for stage in ("train", "serve", "gateway", "monitor"):
        assert any(line.split()[:2] == [stage, "reused"] for line in lines), stage


def test_down_stops_every_process_it_started(demo) -> None:
    pids = [int(p.read_text()) for p in (demo["dir"] / "pids").glob("*.pid")]
    assert len(pids) >= 4
    res = subprocess.run(
        [str(DEMO), "--down"],
        capture_output=True,
        text=True,
        env=demo["env"],
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not list((demo["dir"] / "pids").glob("*.pid"))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{demo['env']['VLLM_PORT']}/health", timeout=5)
