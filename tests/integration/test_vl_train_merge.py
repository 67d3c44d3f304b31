"""The tiny Qwen3-VL trains with images and merges through the real scripts (scripts/train.sh, scripts/merge.sh).

One LoRA SFT run on the shapes data set (real LLaMA-Factory on CPU), then one merge; the tests read what the
user gets: the loss log and plot, the adapter's modules, the merged folder and its processor.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk, venv_bin

TINY = HOME / "models" / "tiny-qwen3vl"
TEXT_MODEL = HOME / "models" / "SmolLM2-135M-Instruct"
TRAIN_RECIPE = "configs/train/qwen3vl_lora_sft_cpu.yaml"
MERGE_RECIPE = "configs/merge/qwen3vl_merge.yaml"


def _need(path: Path, step: str) -> Path:
    if not (path / "ftk-manifest.json").is_file():
        pytest.fail(f"{path} is missing: run `make setup` (scripts/setup.sh {step})")
    return path


def _script(name: str, env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOME / "scripts" / name), *args],
        cwd=HOME,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | dict[str, str]]:
    """A registered shapes data set in a private dataset dir, and the environment every script call uses."""
    _need(TINY, "tiny-vl")
    venv_bin("train", "llamafactory-cli")
    root = tmp_path_factory.mktemp("vl")
    data = root / "data"
    data.mkdir()
    env = clean_env(
        MODEL_ID=str(TINY),
        DATASETS="shapes",
        DATASET_DIR=str(data),
        MEDIA_ROOT=str(HOME / "data"),
        RUNS_DIR=str(root / "runs"),
        RUN_ID="vl",
        TRAIN_RECIPE=TRAIN_RECIPE,
        MERGE_RECIPE=MERGE_RECIPE,
        MERGED_MODEL_PATH=str(root / "merged"),
        ALLOW_CPU="true",
        TRAIN_MIN_FREE_MB="64",
    )
    reg = run_ftk(
        "dataset",
        "register",
        str(HOME / "data" / "shapes.jsonl"),
        "--name",
        "shapes",
        env=env,
    )
    assert reg.returncode == 0, reg.stdout + reg.stderr
    return {"root": root, "env": env}


@pytest.fixture(scope="module")
def trained(work: dict) -> Path:
    proc = _script("train.sh", work["env"])
    assert proc.returncode == 0, f"scripts/train.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return work["root"] / "runs" / "vl"


@pytest.fixture(scope="module")
def merged(work: dict, trained: Path) -> Path:
    proc = _script("merge.sh", work["env"])
    assert proc.returncode == 0, f"scripts/merge.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return work["root"] / "merged"


def test_training_with_images_lowers_a_finite_loss(trained: Path) -> None:
    adapter = trained / "adapter"
    logs = [json.loads(line) for line in (adapter / "trainer_log.jsonl").read_text().splitlines() if line.strip()]
    losses = [float(row["loss"]) for row in logs if "loss" in row]
    assert len(losses) >= 8, losses
    assert all(math.isfinite(x) and x > 0 for x in losses), losses
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < first - 0.5, f"loss did not fall: first steps {losses[:4]}, last steps {losses[-4:]}"
    assert (adapter / "training_loss.png").stat().st_size > 1000
    rendered = (trained / "train.yaml").read_text()
    assert "template: qwen3_vl_nothink" in rendered and "freeze_vision_tower: true" in rendered
    assert (trained / "manifest.json").is_file()


def test_adapter_targets_the_language_model_only(trained: Path) -> None:
    from ftk.serve.adapters import classify_folders

    report = classify_folders(trained / "adapter", TINY)
    assert report.adapter_modules, "the adapter has no LoRA modules"
    assert report.missing == [] and report.vision == [] and report.remapped == []
    assert all(".language_model.layers." in m for m in report.matched)
    # q/k/v/o and gate/up/down of every layer: "all linear layers of the language model"
    kinds = {m.rsplit(".", 1)[1] for m in report.matched}
    assert kinds == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }


def test_merged_model_keeps_the_processor(merged: Path) -> None:
    names = {p.name for p in merged.iterdir()}
    assert {
        "config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= names
    assert "generation_config.json" in names
    assert any(n.endswith(".safetensors") for n in names)
    template = json.loads((merged / "tokenizer_config.json").read_text()).get("chat_template") or ""
    if (merged / "chat_template.jinja").is_file():
        template = (merged / "chat_template.jinja").read_text()
    assert "<|vision_start|><|image_pad|><|vision_end|>" in template
    pre = json.loads((merged / "preprocessor_config.json").read_text())
    assert pre["patch_size"] == 16 and pre["merge_size"] == 2
    # Served images are resized with the budget the adapter was trained with (no resolution skew).
    assert pre["size"]["longest_edge"] == 65536


@pytest.fixture(scope="module")
def merged_prompt(merged: Path) -> dict:
    """LLaMA-Factory's and the merged processor's tokens for one image question (ftk.vl.image_prompt)."""
    python = venv_bin("train", "python")
    proc = subprocess.run(
        [
            str(python),
            "-m",
            "ftk.vl.image_prompt",
            str(merged),
            "qwen3_vl_nothink",
            "--image-max-pixels",
            "65536",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
        cwd=HOME,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_merged_model_encodes_images_like_training(merged_prompt: dict) -> None:
    """The merged folder's processor + chat template give the tokens LLaMA-Factory trained on."""
    assert merged_prompt["same"]
    assert merged_prompt["image_tokens"] == 16  # 112x112 -> 128x128 -> 8x8 patches -> 4x4 merged


def test_merged_model_serves_an_image_request(merged: Path, merged_prompt: dict, tmp_path: Path) -> None:
    """The headline path: the merged VL model served by vLLM (scripts/serve.sh) answers a base64 PNG."""
    import base64
    import io

    from ftk.vl.image_prompt import QUESTION, sample_image
    from openai import OpenAI
    from stack import VENVS, Vllm

    if not (VENVS / "serve-vl" / "bin" / "python").exists():
        pytest.fail("the serve-vl venv is missing: run `make setup` (scripts/setup.sh serve-vl)")
    buf = io.BytesIO()
    sample_image().save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    server = Vllm(
        tmp_path / "vllm",
        extra_env={
            "SERVE_MODEL_PATH": str(merged),
            "SERVE_VENV": str(VENVS / "serve-vl"),
            "LIMIT_MM_PER_PROMPT": '{"image":1,"video":0}',
            "DTYPE": "float32",
        },
    ).start()
    try:
        key = server.key_file.read_text().strip()
        client = OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
        content = [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": QUESTION},
        ]
        raw = client.chat.completions.with_raw_response.create(
            model="base",
            messages=[{"role": "user", "content": content}],
            max_tokens=8,
            temperature=0,
        )
        assert raw.status_code == 200
        completion = raw.parse()
        # the served prompt is the trained one, image tokens included
        assert completion.usage.prompt_tokens == len(merged_prompt["processor_ids"])
        assert completion.usage.completion_tokens > 0
    finally:
        server.stop()


def test_preflight_refuses_a_text_template_on_the_vl_model(work: dict) -> None:
    env = {**work["env"], "TEMPLATE": "qwen", "RUN_ID": "vl-text-template"}
    proc = _script("train.sh", env, "--preflight-only", timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert "template 'qwen' is text-only" in err and str(TINY / "config.json") in err
    assert "qwen3_vl_nothink" in err  # the fix names the VL template
    assert not (work["root"] / "runs" / "vl-text-template" / "adapter").exists()


def test_preflight_refuses_a_vl_template_on_a_text_model(work: dict) -> None:
    _need(TEXT_MODEL, "model")
    env = {**work["env"], "MODEL_ID": str(TEXT_MODEL), "RUN_ID": "text-vl-template"}
    proc = _script("train.sh", env, "--preflight-only", timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr
    assert "template 'qwen3_vl_nothink' is for vision-language models" in err
    assert str(TEXT_MODEL / "config.json") in err
