"""The tiny vision-language model served by real vLLM (.venvs/serve-vl) through scripts/serve.sh.

The user's check after a deploy: a base64 PNG image in an OpenAI chat request gets a 200 answer, for the model
and for a LoRA adapter on its language model; the image costs the same number of tokens as in training; an
adapter that vLLM would silently ignore (vision tower only) is refused before vLLM starts.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, run_ftk, venv_bin
from stack import VENVS, Vllm, base_env

TINY = HOME / "models" / "tiny-qwen3vl"
VL_TOOLS = Path(__file__).with_name("vl_tools.py")
QUESTION = "What shape is this?"


def _tiny() -> Path:
    if not (TINY / "ftk-manifest.json").is_file():
        pytest.fail(f"{TINY} is missing: run `make setup` (scripts/setup.sh tiny-vl)")
    return TINY


def _serve_vl_venv() -> Path:
    venv = VENVS / "serve-vl"
    if not (venv / "bin" / "python").exists():
        pytest.fail(f"{venv} is missing: run `make setup` (scripts/setup.sh serve-vl)")
    return venv


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random LoRA adapters saved by PEFT: one on the language model, one on the vision tower only."""
    out = tmp_path_factory.mktemp("vl-adapters")
    python = venv_bin("train", "python")
    made = {}
    for part in ("language", "vision"):
        target = out / part
        proc = subprocess.run(
            [
                str(python),
                str(VL_TOOLS),
                "adapter",
                str(_tiny()),
                str(target),
                "--part",
                part,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        made[part] = target
    return made


def _png_data_url() -> str:
    from ftk.vl.image_prompt import sample_image

    buf = io.BytesIO()
    sample_image().save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _expected_prompt_tokens() -> int:
    """Tokens of the image question as LLaMA-Factory trained them (train venv, the model's processor)."""
    proc = subprocess.run(
        [
            str(venv_bin("train", "python")),
            "-m",
            "ftk.vl.image_prompt",
            str(TINY),
            "qwen3_vl_nothink",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HOME,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return len(json.loads(proc.stdout.strip().splitlines()[-1])["processor_ids"])


def test_preflight_refuses_a_vision_tower_only_adapter(
    adapters: dict[str, Path],
) -> None:
    env = base_env(
        SERVE_MODEL_PATH=str(_tiny()),
        LORA_MODULES=f"tower={adapters['vision']}",
        LIMIT_MM_PER_PROMPT='{"image":1,"video":0}',
    )
    proc = run_ftk("run", "serve", "--dry-run", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "adapter 'tower'" in proc.stderr and "would change nothing" in proc.stderr
    assert "freeze_vision_tower" in proc.stderr


def test_tiny_vl_model_answers_an_image_request(tmp_path: Path, adapters: dict[str, Path]) -> None:
    from openai import OpenAI

    expected_tokens = _expected_prompt_tokens()
    server = Vllm(
        tmp_path / "vllm",
        extra_env={
            "SERVE_MODEL_PATH": str(_tiny()),
            "SERVE_VENV": str(_serve_vl_venv()),
            "LIMIT_MM_PER_PROMPT": '{"image":1,"video":0}',
            "DTYPE": "float32",
            "LORA_MODULES": f"shapes={adapters['language']}",
        },
    )
    server.start()
    try:
        command = server.log.read_text()
        assert "--limit-mm-per-prompt" in command and "--skip-mm-profiling" in command
        client = OpenAI(
            base_url=server.url + "/v1",
            api_key=server.key_file.read_text().strip(),
            max_retries=0,
        )
        assert {m.id for m in client.models.list().data} == {"base", "shapes"}
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": _png_data_url()}},
                    {"type": "text", "text": QUESTION},
                ],
            }
        ]
        answers = {}
        for model in ("base", "shapes"):
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=8, temperature=0
            )
            assert raw.status_code == 200
            completion = raw.parse()
            assert completion.model == model
            # vLLM expanded the image into as many tokens as training did (same processor, same pixels)
            assert completion.usage.prompt_tokens == expected_tokens
            assert completion.usage.completion_tokens > 0
            answers[model] = completion.choices[0].message.content
        assert answers["shapes"] != answers["base"], f"the adapter changed nothing: {answers}"
    finally:
        server.stop()
