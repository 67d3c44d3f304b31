"""`ftk run download` and scripts/download.sh: a local folder, ModelScope's real offline path against a pre-seeded
cache (its layouts), verification failures, and a fast, explicit failure when the hub cannot be reached."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk


def closed_port_url() -> str:
    """An endpoint that refuses connections at once: what an offline host sees, without depending on the network."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_tiny_model(folder: Path, *, tokenizer: bool = True, chat_template: bool = True) -> Path:
    """A few-KB Llama-shaped HF folder: enough for the verifier, which reads headers and JSON only."""
    import numpy as np
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    save_file(
        {"model.embed_tokens.weight": np.zeros((4, 8), dtype=np.float32)},
        str(folder / "model.safetensors"),
    )
    if tokenizer:
        tok = Tokenizer(models.BPE(vocab={"a": 0, "b": 1}, merges=[]))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel()
        tok.save(str(folder / "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "b"}
    if chat_template:
        cfg["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    return folder


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        **{
            "MODELSCOPE_CACHE": str(tmp_path / "cache"),
            "MODELSCOPE_ENDPOINT": closed_port_url(),
            **extra,
        }
    )


def base_model_path(env: dict[str, str]) -> str:
    out = run_ftk("env", "export", env=env)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("export BASE_MODEL_PATH="))
    return line.split("=", 1)[1].strip("'")


def test_local_folder_is_only_verified(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "my-model")
    result = run_ftk("run", "download", env=env_for(tmp_path, MODEL_ID=str(model)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(model)
    assert "nothing to download" in result.stderr
    assert not (tmp_path / "cache").exists()  # no hub, no cache touched


def test_local_folder_missing_names_model_id(tmp_path: Path) -> None:
    result = run_ftk("run", "download", "--model-id", str(tmp_path / "nope"), env=env_for(tmp_path))
    assert result.returncode == 1
    assert f"MODEL_ID='{tmp_path / 'nope'}': folder {tmp_path / 'nope'} does not exist" in result.stderr


@pytest.mark.parametrize("model_id", ["Not A Model", "a/b/c", "../x"])
def test_bad_model_id_is_a_usage_error(tmp_path: Path, model_id: str) -> None:
    result = run_ftk("run", "download", "--model-id", model_id, env=env_for(tmp_path))
    assert result.returncode in (1, 2), result.stderr
    if model_id == "../x":  # spelled like a path: a folder that does not exist
        assert "does not exist" in result.stderr
    else:
        assert result.returncode == 2
        assert f"--model-id={model_id!r} is neither an existing folder nor a ModelScope id" in result.stderr


def test_seeded_cache_resolves_through_modelscope_offline(tmp_path: Path) -> None:
    seeded = make_tiny_model(tmp_path / "cache" / "models" / "TestOrg" / "tiny-chat")
    env = env_for(tmp_path, MODEL_ID="TestOrg/tiny-chat")
    result = run_ftk("run", "download", "--offline", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(seeded)
    assert base_model_path(env) == str(seeded)  # the path train and serve read is the one verified


def test_unreachable_hub_falls_back_to_the_seeded_cache(tmp_path: Path) -> None:
    seeded = make_tiny_model(tmp_path / "cache" / "models" / "TestOrg" / "tiny-chat")
    result = run_ftk("run", "download", "--model-id", "TestOrg/tiny-chat", env=env_for(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(seeded)
    assert "unreachable" in result.stderr and "using the cache only" in result.stderr


@pytest.mark.parametrize("layout", ["snapshot", "legacy"])
def test_modelscope_own_cache_layouts_are_found(tmp_path: Path, layout: str) -> None:
    """Folders ModelScope's tools write (1.38+ snapshots; <=1.37 with dots spelled ___) resolve too."""
    models = tmp_path / "cache" / "models"
    folder = (
        models / "TestOrg--tiny.v2" / "snapshots" / "master"
        if layout == "snapshot"
        else models / "TestOrg" / "tiny___v2"
    )
    make_tiny_model(folder)
    env = env_for(tmp_path, MODEL_ID="TestOrg/tiny.v2")
    result = run_ftk("run", "download", "--offline", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(folder)
    assert base_model_path(env) == str(folder)


def test_seeded_model_without_tokenizer_fails_verification(tmp_path: Path) -> None:
    make_tiny_model(tmp_path / "cache" / "models" / "TestOrg" / "tiny-chat", tokenizer=False)
    result = run_ftk(
        "run",
        "download",
        "--offline",
        "--model-id",
        "TestOrg/tiny-chat",
        env=env_for(tmp_path),
    )
    assert result.returncode == 1
    assert "tokenizer: no tokenizer file (tokenizer.json, tokenizer.model, vocab.json)" in result.stderr
    assert "copy the tokenizer files" in result.stderr
    assert result.stdout == ""


def test_offline_without_cache_fails_fast_with_what_to_do(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_ftk("run", "download", "--model-id", "TestOrg/absent", env=env_for(tmp_path), timeout=60)
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert elapsed < 20, f"took {elapsed:.1f} s: ModelScope retried instead of failing fast"
    err = " ".join(result.stderr.split())
    assert "TestOrg/absent (revision master) cannot be downloaded" in err
    assert "is unreachable" in err
    assert f"pre-seed the cache: copy the model folder to {tmp_path / 'cache' / 'models' / 'TestOrg' / 'absent'}" in err
    assert "point MODEL_ID at a local model folder" in err


def _script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOME / "scripts" / "download.sh"), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_script_help_lists_keys(tmp_path: Path) -> None:
    result = _script("--help", env=env_for(tmp_path))
    assert result.returncode == 0
    for key in (
        "MODEL_ID",
        "MODEL_REVISION",
        "MODELSCOPE_CACHE",
        "DOWNLOAD_MAX_RETRIES",
        "DOWNLOAD_TIMEOUT",
    ):
        assert key in result.stdout


def test_script_runs_checks_then_verifies_a_seeded_cache(tmp_path: Path) -> None:
    seeded = make_tiny_model(tmp_path / "cache" / "models" / "TestOrg" / "tiny-chat")
    result = _script("--model-id", "TestOrg/tiny-chat", env=env_for(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(seeded)
    assert "download preflight (ftk doctor --stage download)" in result.stderr


def test_script_bad_model_id_and_bad_flag(tmp_path: Path) -> None:
    result = _script(env=env_for(tmp_path, MODEL_ID="no such model"))
    assert result.returncode == 1
    assert "MODEL_ID='no such model' is neither an existing folder nor a ModelScope id" in result.stderr
    result = _script("--bogus", env=env_for(tmp_path))
    assert result.returncode == 2 and "No such option: --bogus" in result.stderr


def test_script_unwritable_cache_names_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    hub_id = {"MODEL_ID": "TestOrg/tiny-chat"}  # a local MODEL_ID never touches the cache
    result = _script(env=env_for(tmp_path, MODELSCOPE_CACHE=str(blocker / "cache"), **hub_id))
    assert result.returncode == 1
    assert f"cannot create {blocker / 'cache'}" in result.stderr
