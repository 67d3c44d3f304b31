"""`ftk config render train|merge`: placeholders, typed overrides, unknown keys and bad values."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import HOME, clean_env, run_ftk


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(RUNS_DIR=str(tmp_path / "runs"), MODELS_DIR=str(tmp_path / "models"), **extra)


def _render(tmp_path: Path, *args: str, kind: str = "train", **env: str):
    return run_ftk("config", "render", kind, "--run-id", "r1", *args, env=_env(tmp_path, **env))


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_render_fills_settings_and_keeps_types(tmp_path: Path) -> None:
    r = _render(tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "runs" / "r1" / "train.yaml"
    assert r.stdout.strip() == str(out)
    cfg = yaml.safe_load(out.read_text())
    assert cfg["model_name_or_path"] == str(HOME / "models" / "SmolLM2-135M-Instruct")
    assert cfg["output_dir"] == str(tmp_path / "runs" / "r1" / "adapter")
    assert cfg["dataset"] == "identity" and cfg["dataset_dir"] == str(HOME / "data")
    assert cfg["lora_rank"] == 8 and isinstance(cfg["lora_rank"], int)  # the recipe's default
    assert isinstance(cfg["learning_rate"], float) and cfg["template"] == "smollm2"
    assert "quantization_bit" not in cfg  # empty QUANTIZATION_BIT: plain LoRA
    assert "Rendered by `ftk config render train`" in out.read_text()


def test_env_values_override_recipe_defaults(tmp_path: Path) -> None:
    r = _render(
        tmp_path,
        "--stdout",
        LORA_RANK="16",
        LEARNING_RATE="5e-4",
        DATASETS="identity, extra",
        CUTOFF_LEN="512",
        QUANTIZATION_BIT="4",
    )
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert (cfg["lora_rank"], cfg["learning_rate"], cfg["cutoff_len"]) == (
        16,
        5e-4,
        512,
    )
    assert cfg["dataset"] == "identity,extra" and cfg["quantization_bit"] == 4


def test_set_overrides_are_typed(tmp_path: Path) -> None:
    r = _render(
        tmp_path,
        "--stdout",
        "--set",
        "lora_rank=32",
        "--set",
        "bf16=true",
        "--set",
        "learning_rate=1e-3",
        "--set",
        "lr_scheduler_type=linear",
        "--set",
        "max_steps=5",
    )
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["lora_rank"] == 32 and cfg["bf16"] is True and cfg["learning_rate"] == 1e-3
    assert cfg["lr_scheduler_type"] == "linear" and cfg["max_steps"] == 5


def test_unknown_set_key_names_the_closest_llamafactory_key(tmp_path: Path) -> None:
    r = _render(tmp_path, "--set", "lora_rnak=4")
    assert r.returncode == 1
    assert "--set lora_rnak: 'lora_rnak' is not a LLaMA-Factory 0.9.5 key; did you mean 'lora_rank'?" in r.stderr
    assert not (tmp_path / "runs" / "r1" / "train.yaml").exists()


def test_unknown_recipe_key_names_file_and_line(tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        "model_name_or_path: ${BASE_MODEL_PATH}\ntemplate: smollm2\nlearning_rat: 1.0e-4\n",
    )
    r = _render(tmp_path, "--recipe", str(recipe))
    assert r.returncode == 1
    assert f"{recipe}:3: learning_rat: 'learning_rat' is not a LLaMA-Factory" in r.stderr
    assert "did you mean 'learning_rate'?" in r.stderr


def test_unknown_placeholder_is_an_error(tmp_path: Path) -> None:
    recipe = _recipe(
        tmp_path,
        "model_name_or_path: ${BASE_MODEL_PATH}\ntemplate: smollm2\nlora_rank: ${LORA_RNK}\n",
    )
    r = _render(tmp_path, "--recipe", str(recipe))
    assert r.returncode == 1 and "unknown placeholder ${LORA_RNK}; did you mean ${LORA_RANK}?" in r.stderr


def test_rank_zero_is_refused_naming_the_key(tmp_path: Path) -> None:
    r = _render(tmp_path, "--set", "lora_rank=0")
    assert r.returncode == 1 and "--set lora_rank=0: lora_rank=0 must be >= 1" in r.stderr
    r = _render(tmp_path, LORA_RANK="-1")
    assert r.returncode == 1 and "LORA_RANK" in r.stderr and "greater than or equal to 1" in r.stderr


def test_image_pixels_below_one_patch(tmp_path: Path) -> None:
    base = (
        "model_name_or_path: ${BASE_MODEL_PATH}\noutput_dir: ${OUTPUT_DIR}\n"
        "image_max_pixels: ${IMAGE_MAX_PIXELS:-1024}\n"
    )
    qwen3 = _recipe(tmp_path, base + "template: qwen3_vl_nothink\n")
    r = _render(tmp_path, "--recipe", str(qwen3), IMAGE_MAX_PIXELS="900")
    assert r.returncode == 1
    assert "IMAGE_MAX_PIXELS (from .env or the environment" in r.stderr
    assert "image_max_pixels=900 is below one 32x32 patch (1024 pixels) of template qwen3_vl_nothink" in r.stderr
    assert _render(tmp_path, "--recipe", str(qwen3), IMAGE_MAX_PIXELS="1024").returncode == 0
    qwen2 = _recipe(tmp_path, base + "template: qwen2_vl\n")
    r = _render(tmp_path, "--recipe", str(qwen2), "--set", "image_max_pixels=700")
    assert r.returncode == 1 and "below one 28x28 patch (784 pixels) of template qwen2_vl" in r.stderr


def test_unknown_template_names_the_closest(tmp_path: Path) -> None:
    r = _render(tmp_path, TEMPLATE="smolm2")
    assert (
        r.returncode == 1
        and "template 'smolm2' is not a LLaMA-Factory 0.9.5 template; did you mean 'smollm2'?" in r.stderr
    )


def test_failed_render_keeps_the_previous_file(tmp_path: Path) -> None:
    assert _render(tmp_path).returncode == 0
    out = tmp_path / "runs" / "r1" / "train.yaml"
    before = out.read_text()
    assert _render(tmp_path, "--set", "num_train_epochs=0").returncode == 1
    assert out.read_text() == before
    assert [p.name for p in out.parent.iterdir()] == ["train.yaml"]  # no temp file left


def test_merge_render_exports_next_to_target_and_inherits_the_template(
    tmp_path: Path,
) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "train.yaml").write_text("template: chatml\ndefault_system: Be brief.\n")
    r = _render(tmp_path, kind="merge", MERGED_MODEL_PATH=str(tmp_path / "out" / "m1"))
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load((run / "merge.yaml").read_text())
    assert cfg["export_dir"] == str(tmp_path / "out" / ".m1.partial")
    assert cfg["adapter_name_or_path"] == str(run / "adapter")
    assert (cfg["template"], cfg["default_system"]) == ("chatml", "Be brief.")
    assert cfg["export_legacy_format"] is False and cfg["export_size"] == 5 and cfg["export_device"] == "cpu"


def test_every_shipped_recipe_renders(tmp_path: Path) -> None:
    recipes = sorted((HOME / "configs" / "train").glob("*.yaml")) + sorted((HOME / "configs" / "merge").glob("*.yaml"))
    assert any(p.name == "text_lora_sft_cpu.yaml" for p in recipes)
    for recipe in recipes:
        r = _render(tmp_path, "--recipe", str(recipe), "--stdout", kind=recipe.parent.name)
        assert r.returncode == 0, f"{recipe}: {r.stderr}"
        assert yaml.safe_load(r.stdout)["model_name_or_path"]
