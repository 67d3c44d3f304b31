"""`ftk env check|export` and the settings model: the errors name the key, the line and the fix."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import HOME, clean_env, run_ftk
from ftk.settings import Settings, known_keys


def write_env(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "test.env"
    f.write_text(text)
    os.chmod(f, 0o600)
    return f


def test_env_example_documents_every_key_and_validates():
    example = (HOME / ".env.example").read_text()
    keys = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example, flags=re.M))
    missing = sorted(set(known_keys()) - keys)
    assert not missing, f".env.example lacks {missing}"
    r = run_ftk("env", "check", str(HOME / ".env.example"))
    assert r.returncode == 0, r.stderr


def test_unknown_key_names_line_and_closest_key(tmp_path):
    f = write_env(tmp_path, "# comment\nLORA_RANK=8\nLORA_RANKK=3\n")
    r = run_ftk("env", "check", str(f))
    assert r.returncode == 1
    assert f"{f}:3: LORA_RANKK: unknown key; did you mean LORA_RANK?" in r.stderr


def test_bad_values_name_key_and_line(tmp_path):
    f = write_env(tmp_path, "VLLM_PORT=99999\nDTYPE=fp64\nLORA_MODULES=noequals\nQUANTIZATION_BIT=3\n")
    r = run_ftk("env", "check", str(f))
    assert r.returncode == 1
    assert f"{f}:1: VLLM_PORT='99999'" in r.stderr
    assert f"{f}:2: DTYPE='fp64'" in r.stderr
    assert f"{f}:3: LORA_MODULES='noequals'" in r.stderr and "name=path" in r.stderr
    assert f"{f}:4: QUANTIZATION_BIT='3'" in r.stderr


def test_missing_file_is_reported(tmp_path):
    r = run_ftk("env", "check", str(tmp_path / "nope.env"))
    assert r.returncode == 1
    assert "copy .env.example" in r.stderr


def test_world_readable_env_warns(tmp_path):
    f = write_env(tmp_path, "LORA_RANK=8\n")
    os.chmod(f, 0o644)
    r = run_ftk("env", "check", str(f))
    assert r.returncode == 0
    assert "chmod 600" in r.stderr


def test_environment_overrides_env_file(tmp_path):
    f = write_env(tmp_path, "LORA_RANK=8\nRUN_ID=from-file\n")
    r = run_ftk("env", "export", env=clean_env(FTK_ENV_FILE=str(f), RUN_ID="from-env"))
    assert r.returncode == 0, r.stderr
    assert "export RUN_ID=from-env" in r.stdout
    assert "export LORA_RANK=8" in r.stdout
    assert f"export RUN_DIR={HOME}/runs/from-env" in r.stdout


def test_invalid_setting_in_any_command_names_key_without_traceback(tmp_path):
    f = write_env(tmp_path, "MAX_MODEL_LEN=zero\n")
    r = run_ftk("env", "export", env=clean_env(FTK_ENV_FILE=str(f)))
    assert r.returncode == 1
    assert "MAX_MODEL_LEN='zero'" in r.stderr and str(f) in r.stderr
    assert "Traceback" not in r.stderr


def test_derived_paths_resolve_against_home():
    s = Settings(model_id="Qwen/Qwen3-VL-2B-Instruct", modelscope_cache=Path(".cache/ms"))
    assert s.base_model_path == HOME / ".cache/ms/models/Qwen/Qwen3-VL-2B-Instruct"
    s = Settings(model_id="models/SmolLM2-135M-Instruct")
    assert s.base_model_path == HOME / "models/SmolLM2-135M-Instruct"
    s = Settings(run_id="r1")
    assert s.resolved_adapter_path == HOME / "runs/r1/adapter"
    assert s.resolved_merged_path == HOME / "models/merged/r1"


def test_usage_error_exits_2():
    r = run_ftk("env", "check", "--no-such-flag")
    assert r.returncode == 2
    assert "--no-such-flag" in r.stderr
