"""DPO trains on CPU through scripts/train.sh and changes the default model's preference on held-out pairs.

The project's preference set (data/preferences.json) teaches the assistant to name itself; the held-out pairs
(data/preferences_heldout.json) ask other questions. The margin log p(chosen) - log p(rejected) of each held-out
pair (`ftk.train.preference_margin`, transformers + peft) must rise over the base model's for the adapter.
The preflight refuses an SFT data set for a DPO recipe before training starts.

ORPO is LLaMA-Factory's DPO stage with `pref_loss: orpo`: the same preflight, rendering, trainer and manifest path
as DPO, so its recipe is checked up to the trainer (preflight and rendered recipe) and not trained a second time
(that run took about half of this module's time in CI); KTO's recipe likewise only renders
(tests/unit/test_config_render.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import HOME, clean_env, run_ftk, venv_bin

# A few small steps keep the run to seconds of training on 2 cores; enough to move the margins.
SETS = ["max_steps=4", "per_device_train_batch_size=2", "cutoff_len=96", "learning_rate=1e-3"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("pref")
    env = clean_env(DATASET_DIR=str(root / "data"), RUNS_DIR=str(root / "runs"), ALLOW_CPU="true")
    r = run_ftk("dataset", "init", env=env)
    assert r.returncode == 0, r.stderr
    return env


def train(env: dict[str, str], recipe: str, run_id: str, datasets: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "TRAIN_RECIPE": f"configs/train/{recipe}", "RUN_ID": run_id, "DATASETS": datasets}
    cmd = [str(HOME / "scripts" / "train.sh"), *(arg for kv in SETS for arg in ("--set", kv)), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HOME, timeout=900, check=False)


def test_preflight_refuses_sft_data_for_dpo(sandbox: dict[str, str]) -> None:
    r = train(sandbox, "text_lora_dpo_cpu.yaml", "wrong", "identity")
    assert r.returncode != 0
    assert "stage 'dpo' trains on pairwise data" in r.stderr + r.stdout
    assert not (Path(sandbox["RUNS_DIR"]) / "wrong" / "adapter").exists()


def test_orpo_recipe_passes_the_preflight_on_pairwise_data(sandbox: dict[str, str]) -> None:
    r = train(sandbox, "text_lora_orpo_cpu.yaml", "orpo", "preferences", "--preflight-only")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    run = Path(sandbox["RUNS_DIR"]) / "orpo"
    rendered = yaml.safe_load((run / "train.yaml").read_text())
    assert (rendered["stage"], rendered["pref_loss"], rendered["dataset"]) == ("dpo", "orpo", "preferences")
    assert rendered["max_steps"] == 4 and not (run / "adapter").exists()


def test_dpo_raises_the_preference_on_held_out_pairs(sandbox: dict[str, str]) -> None:
    runs = Path(sandbox["RUNS_DIR"])
    r = train(sandbox, "text_lora_dpo_cpu.yaml", "dpo", "preferences")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    manifest = json.loads((runs / "dpo" / "manifest.json").read_text())
    assert manifest["config"]["stage"] == "dpo"
    cmd = [
        str(venv_bin("train", "python")),
        "-m",
        "ftk.train.preference_margin",
        "--model",
        str(HOME / "models" / "SmolLM2-135M-Instruct"),
        "--adapter",
        str(runs / "dpo" / "adapter"),
        "--pairs",
        str(HOME / "data" / "preferences_heldout.json"),
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=sandbox, timeout=600, check=True)
    margins = json.loads(out.stdout.strip().splitlines()[-1])
    base = margins.pop("base")
    assert len(margins) == 1, margins
    for adapter, values in margins.items():
        raised = sum(v > b for v, b in zip(values, base, strict=True))
        assert sum(values) / len(values) > sum(base) / len(base) + 1.0, (adapter, values, base)
        assert raised >= len(base) - 1, (adapter, values, base)
