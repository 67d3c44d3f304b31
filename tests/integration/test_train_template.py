"""The template drift check: LLaMA-Factory's template against the model's own chat template (real tokenizer)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import HOME, clean_env, run_ftk


def test_drift_is_a_warning_with_a_readable_diff(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    reg = run_ftk(
        "dataset",
        "register",
        str(HOME / "data" / "identity.json"),
        "--name",
        "identity",
        "--dataset-dir",
        str(data),
        env=clean_env(),
    )
    assert reg.returncode == 0, reg.stderr
    env = clean_env(
        RUNS_DIR=str(tmp_path / "runs"),
        DATASET_DIR=str(data),
        MEDIA_ROOT=str(data),
        RUN_ID="drift",
    )

    def preflight(*sets: str) -> subprocess.CompletedProcess[str]:
        args = [a for s in sets for a in ("--set", s)]
        return subprocess.run(
            [str(HOME / "scripts" / "train.sh"), "--preflight-only", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )

    # LLaMA-Factory's smollm2 default system prompt ends with a period SmolLM2's own template does not have
    r = preflight("default_system=null")
    assert r.returncode == 0, r.stderr  # a warning: training may go on
    assert "template drift: LLaMA-Factory template 'smollm2'" in r.stderr
    assert "-You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n" in r.stderr
    assert "+You are a helpful AI assistant named SmolLM, trained by Hugging Face.<|im_end|>\\n" in r.stderr
    assert "sample 'no system message', serving prompt" in r.stderr
    # the shipped recipe sets default_system so both agree
    r = preflight("overwrite_cache=true")
    assert r.returncode == 0, r.stderr
    assert "template smollm2 renders the same prompts as the model's chat template" in r.stdout + r.stderr
    assert "template drift" not in r.stderr
