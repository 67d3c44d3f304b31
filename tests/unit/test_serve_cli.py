"""`ftk serve key|wait`, `ftk run serve --dry-run` and `ftk lora` without a server: clear one-line errors, no secret
printed."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import clean_env, run_ftk
from serve_fakes import make_adapter, make_model


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_key_file_is_created_0600_once_and_never_printed(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "vllm_api_key"
    first = run_ftk("serve", "key", str(key))
    assert first.returncode == 0 and key.stat().st_mode & 0o777 == 0o600
    secret = key.read_text().strip()
    assert len(secret) >= 32 and secret not in first.stdout + first.stderr
    assert run_ftk("serve", "key", str(key)).returncode == 0 and key.read_text().strip() == secret


def _serve_env(tmp_path: Path, model: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        SERVE_MODEL_PATH=str(model),
        VLLM_PORT=str(closed_port()),
        VLLM_API_KEY_FILE=str(tmp_path / "key"),
        RUNS_DIR=str(tmp_path / "runs"),
        PATH="/usr/bin:/bin",
        **extra,
    )


def test_dry_run_prints_the_launcher_line(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", max_positions=4096)
    adapter = make_adapter(tmp_path / "a", model, r=16)
    env = _serve_env(tmp_path, model, LORA_MODULES=f"ident={adapter}")
    r = run_ftk("run", "serve", "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    line = " ".join(r.stderr.split())
    assert "vllm_launcher.py serve" in line and "--max-lora-rank 16" in line and "--kv-cache-memory-bytes" in line
    assert (tmp_path / "key").read_text().strip() not in r.stdout + r.stderr
    bad = run_ftk("run", "serve", "--dry-run", env={**env, "MAX_LORA_RANK": "8"})
    assert bad.returncode == 1 and "r=16" in bad.stderr and "vllm_launcher.py serve" not in bad.stdout + bad.stderr


def test_serve_checks_exit_codes(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m")
    ok = run_ftk("run", "serve", "--dry-run", env=_serve_env(tmp_path, model))
    assert ok.returncode == 0 and "serve preflight (ftk doctor --stage serve)" in ok.stderr, ok.stderr
    (model / "tokenizer.json").unlink()
    bad = run_ftk("run", "serve", "--dry-run", env=_serve_env(tmp_path, model))
    assert bad.returncode == 1 and "tokenizer: no tokenizer file" in bad.stderr
    assert "nothing was started" in bad.stderr


def test_lora_and_wait_without_a_server() -> None:
    env = clean_env(VLLM_PORT=str(closed_port()))
    r = run_ftk("lora", "list", env=env)
    assert r.returncode == 1 and "cannot connect to vLLM" in r.stderr and "scripts/serve.sh" in r.stderr
    r = run_ftk("lora", "unload", "x", env=env)
    assert r.returncode == 1 and "cannot connect to vLLM" in r.stderr
    r = run_ftk("serve", "wait", "--timeout", "1", env=env)
    assert r.returncode == 1 and "not ready after" in r.stderr and "/health not answering" in r.stderr
