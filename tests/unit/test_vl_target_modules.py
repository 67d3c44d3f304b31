"""The VL-aware target-module comparison: what vLLM applies, maps, ignores, or cannot find."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ftk.hf.modelinfo import ModelInfo
from ftk.hf.target_modules import canonical, classify, is_vision
from ftk.serve.adapters import Adapter, check_targets

LAYERS = [f"layers.{i}.{m}" for i in range(2) for m in ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")]
QWEN3VL_MODEL = {f"model.language_model.{m}" for m in LAYERS} | {
    "model.visual.blocks.0.attn.qkv",
    "model.visual.blocks.0.mlp.linear_fc1",
    "model.visual.merger.linear_fc1",
    "model.language_model.embed_tokens",
}
# The layout transformers still writes for Qwen2-VL checkpoints (and the hub's Qwen2-VL folders use).
QWEN2VL_LEGACY_MODEL = {f"model.{m}" for m in LAYERS} | {
    "visual.blocks.0.attn.qkv",
    "model.embed_tokens",
}
ADAPTER_LM = [f"model.language_model.{m}" for m in LAYERS]


def test_canonical_maps_the_qwen_vl_layouts_to_one_name() -> None:
    assert canonical("model.language_model.layers.0.self_attn.q_proj") == "model.layers.0.self_attn.q_proj"
    assert canonical("language_model.model.layers.0.mlp.down_proj") == "model.layers.0.mlp.down_proj"
    assert canonical("model.visual.blocks.0.attn.qkv") == "visual.blocks.0.attn.qkv"
    assert canonical("model.layers.0.mlp.down_proj") == "model.layers.0.mlp.down_proj"


def test_is_vision_knows_towers_and_projectors() -> None:
    assert is_vision("model.visual.blocks.0.attn.qkv")
    assert is_vision("visual.merger.mlp.0")
    assert is_vision("model.vision_tower.encoder.layers.0.self_attn.q_proj")
    assert is_vision("model.multi_modal_projector.linear_1")
    assert not is_vision("model.language_model.layers.0.self_attn.q_proj")


def test_language_model_adapter_on_its_own_layout_matches() -> None:
    report = classify(ADAPTER_LM, QWEN3VL_MODEL)
    assert report.matched == sorted(ADAPTER_LM)
    assert not (report.remapped or report.vision or report.missing)
    assert report.errors() == [] and report.warnings() == []


def test_prefix_difference_is_remapped_with_a_warning_not_missing() -> None:
    report = classify(ADAPTER_LM, QWEN2VL_LEGACY_MODEL)
    assert report.missing == [] and report.matched == []
    assert (
        "model.language_model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.q_proj",
    ) in report.remapped
    (warning,) = report.warnings("adapter 'shapes'")
    assert "adapter 'shapes'" in warning and "model.language_model.layers" in warning and "model.layers" in warning


def test_vision_modules_next_to_language_ones_warn() -> None:
    report = classify([*ADAPTER_LM, "model.visual.blocks.0.attn.qkv"], QWEN3VL_MODEL)
    assert report.vision == ["model.visual.blocks.0.attn.qkv"]
    assert report.errors() == []
    assert any("--enable-tower-connector-lora" in w for w in report.warnings())


def test_vision_only_adapter_is_an_error_unless_tower_lora_is_on() -> None:
    vision_only = ["model.visual.blocks.0.attn.qkv", "model.visual.merger.linear_fc1"]
    (error,) = classify(vision_only, QWEN3VL_MODEL).errors("adapter 'v'")
    assert "would change nothing" in error and "freeze_vision_tower" in error
    assert classify(vision_only, QWEN3VL_MODEL, tower_lora=True).errors() == []


def test_modules_of_another_architecture_are_missing() -> None:
    report = classify(["model.layers.0.self_attn.c_attn", *ADAPTER_LM], QWEN3VL_MODEL)
    assert report.missing == ["model.layers.0.self_attn.c_attn"]


# --- through the serve preflight's adapter check, from real safetensors headers ----------------------------


def _write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A valid safetensors file of zeros (float32) with the given tensor shapes."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)


def _folders(tmp_path: Path, model_modules: set[str], adapter_modules: list[str]) -> tuple[Adapter, ModelInfo]:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "qwen2_vl", "vision_config": {}}))
    _write_safetensors(model / "model.safetensors", {f"{m}.weight": [8, 4] for m in model_modules})
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 2, "target_modules": ["q_proj"]}))
    lora = {}
    for m in adapter_modules:
        lora[f"base_model.model.{m}.lora_A.weight"] = [2, 4]
        lora[f"base_model.model.{m}.lora_B.weight"] = [8, 2]
    _write_safetensors(adapter / "adapter_model.safetensors", lora)
    return Adapter.load("shapes", adapter), ModelInfo.load(model)


def test_serve_check_accepts_a_remapped_layout_and_checks_its_shapes(
    tmp_path: Path,
) -> None:
    adapter, model = _folders(tmp_path, QWEN2VL_LEGACY_MODEL, ADAPTER_LM)
    problems, warnings = check_targets(adapter, model)
    assert problems == []
    assert any("another layout" in w for w in warnings)


def test_serve_check_refuses_a_vision_only_adapter(tmp_path: Path) -> None:
    adapter, model = _folders(tmp_path, QWEN2VL_LEGACY_MODEL, ["visual.blocks.0.attn.qkv"])
    problems, _ = check_targets(adapter, model)
    assert any("would change nothing" in p for p in problems)
