"""scripts/serve.sh refuses each trap before vLLM starts: one error line naming the value and the fix.

SERVE_VENV points at a fake venv whose `python` would leave a marker file: no test may reach it.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, clean_env
from serve_fakes import make_adapter, make_model

SERVE = HOME / "scripts" / "serve.sh"


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    marker = tmp_path / "vllm-started"
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    python.chmod(0o755)
    model = make_model(tmp_path / "model")
    return {"tmp": tmp_path, "venv": venv, "marker": marker, "model": model}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(sandbox: dict[str, Path], **env: str) -> subprocess.CompletedProcess[str]:
    base = clean_env(
        SERVE_VENV=str(sandbox["venv"]),
        SERVE_MODEL_PATH=str(sandbox["model"]),
        VLLM_PORT=str(free_port()),
        VLLM_API_KEY_FILE=str(sandbox["tmp"] / "key"),
        RUNS_DIR=str(sandbox["tmp"] / "runs"),
        ALLOW_CPU="true",
    )
    base.update(env)
    r = subprocess.run(
        [str(SERVE)],
        check=False,
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
        cwd=HOME,
    )
    assert not sandbox["marker"].exists(), "vLLM was started despite the failed preflight"
    assert "starting vLLM" not in r.stderr
    return r


def refused(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    line = next((e for e in errors if all(n in e for n in needles)), None)
    assert line, f"no error line with {needles}:\n{r.stderr}"
    return line


def test_help_lists_the_settings() -> None:
    r = subprocess.run([str(SERVE), "--help"], check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for key in (
        "SERVE_MODEL_PATH",
        "LORA_MODULES",
        "MAX_LORA_RANK",
        "CPU_KV_CACHE_BYTES",
        "VLLM_API_KEY_FILE",
        "LIMIT_MM_PER_PROMPT",
        "SERVE_VENV",
        "ftk serve wait",
    ):
        assert key in r.stdout


def test_rank_above_the_limit(sandbox: dict[str, Path]) -> None:
    adapter = make_adapter(sandbox["tmp"] / "r32", sandbox["model"], r=32)
    r = serve(sandbox, LORA_MODULES=f"big={adapter}", MAX_LORA_RANK="16")
    refused(r, "adapter 'big' has rank r=32", "MAX_LORA_RANK")


def test_adapter_for_another_base(sandbox: dict[str, Path]) -> None:
    other = make_model(sandbox["tmp"] / "other", hidden=128)
    adapter = make_adapter(sandbox["tmp"] / "a", other)
    refused(
        serve(sandbox, LORA_MODULES=f"x={adapter}"),
        "adapter 'x' was made for base model",
        str(other),
    )


def test_missing_target_modules(sandbox: dict[str, Path]) -> None:
    adapter = make_adapter(
        sandbox["tmp"] / "a",
        sandbox["model"],
        prefix="base_model.model.model.language_model.",
    )
    adapter_renamed = make_adapter(sandbox["tmp"] / "b", sandbox["model"], prefix="base_model.model.transformer.h.")
    r = serve(sandbox, LORA_MODULES=f"x={adapter_renamed}")
    refused(r, "adapter 'x'", "do not exist in the served model", "silently")
    assert adapter.is_dir()


def test_port_taken(sandbox: dict[str, Path]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        refused(serve(sandbox, VLLM_PORT=str(port)), f"port {port}", "already in use")


def test_too_few_gpus(sandbox: dict[str, Path]) -> None:
    bin_dir = sandbox["tmp"] / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0000)'\n")
    smi.chmod(0o755)
    env = clean_env()
    r = serve(
        sandbox,
        ALLOW_CPU="false",
        TENSOR_PARALLEL_SIZE="2",
        PATH=f"{bin_dir}:{env['PATH']}",
    )
    refused(r, "needs 2 GPU(s) but 1 visible", "TENSOR_PARALLEL_SIZE=2", "ALLOW_CPU=true")


def test_model_folder_without_config(sandbox: dict[str, Path]) -> None:
    (sandbox["model"] / "config.json").unlink()
    refused(serve(sandbox), "config: no config.json", "SERVE_MODEL_PATH")


def test_duplicate_adapter_names(sandbox: dict[str, Path]) -> None:
    a = make_adapter(sandbox["tmp"] / "a", sandbox["model"])
    refused(serve(sandbox, LORA_MODULES=f"x={a},x={a}"), "'x' is used twice")


def test_max_model_len_too_large(sandbox: dict[str, Path]) -> None:
    refused(
        serve(sandbox, MAX_MODEL_LEN="100000"),
        "MAX_MODEL_LEN=100000",
        "max_position_embeddings 4096",
    )


def test_passing_preflight_reaches_the_launcher_without_the_key(
    sandbox: dict[str, Path],
) -> None:
    """The control case: a good config gets to exec; the key file is made 0600 and never printed."""
    env = clean_env(
        SERVE_VENV=str(sandbox["venv"]),
        SERVE_MODEL_PATH=str(sandbox["model"]),
        VLLM_PORT=str(free_port()),
        VLLM_API_KEY_FILE=str(sandbox["tmp"] / "key"),
        RUNS_DIR=str(sandbox["tmp"] / "runs"),
    )
    r = subprocess.run(
        [str(SERVE)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=HOME,
    )
    assert r.returncode == 0, r.stderr
    assert sandbox["marker"].exists()
    key_file = sandbox["tmp"] / "key"
    key = key_file.read_text().strip()
    assert len(key) >= 32 and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert key not in r.stderr + r.stdout and "--kv-cache-memory-bytes 256M" in r.stderr
    assert (sandbox["tmp"] / "runs" / "serve").glob("state-*.json")
