"""The model-folder check (ftk.hf.folder): each way a folder can be incomplete is named, with the file and the fix."""

from __future__ import annotations

import json
from pathlib import Path

from ftk.hf.folder import failures, problems, verify_model_dir
from ftk.hf.tensors import safetensors_problem
from test_download import make_tiny_model


def _fails(folder: Path) -> list[str]:
    return [f"{f.what}: {f.detail}" for f in failures(verify_model_dir(folder))]


def test_complete_folder_passes(tmp_path: Path) -> None:
    assert _fails(make_tiny_model(tmp_path / "m")) == []


def test_missing_config_and_weights(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m")
    (m / "config.json").unlink()
    (m / "model.safetensors").unlink()
    assert _fails(m) == [
        "config: no config.json",
        "weights: no weights (*.safetensors or *.bin)",
    ]


def test_index_naming_a_missing_shard(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m")
    (m / "model.safetensors").rename(m / "model-00001-of-00002.safetensors")
    (m / "model.safetensors.index.json").write_text(
        json.dumps(
            {
                "weight_map": {
                    "a": "model-00001-of-00002.safetensors",
                    "b": "model-00002-of-00002.safetensors",
                }
            }
        )
    )
    missing = "model-00002-of-00002.safetensors"
    assert _fails(m) == [f"weights: model.safetensors.index.json lists 2 shards, missing: {missing}"]


def test_truncated_safetensors(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m")
    data = (m / "model.safetensors").read_bytes()
    (m / "model.safetensors").write_bytes(data[:-10])
    assert "truncated or damaged" in safetensors_problem(m / "model.safetensors")
    assert len(_fails(m)) == 1


def test_no_chat_template_and_bad_json(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m", chat_template=False)
    assert _fails(m) == ["chat template: none in tokenizer_config.json, chat_template.jinja or chat_template.json"]
    (m / "chat_template.jinja").write_text("{{ x }}")
    assert _fails(m) == []
    (m / "config.json").write_text('{"a": 1,\n oops}')
    assert _fails(m) == ["config: config.json:2:2: invalid JSON: Expecting property name enclosed in double quotes"]


def test_vision_language_model_needs_processor_files(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m")
    (m / "config.json").write_text(json.dumps({"model_type": "qwen2_vl", "vision_config": {"depth": 1}}))
    why = "vision-language model (config has vision_config) without preprocessor_config.json"
    assert _fails(m) == [f"processor: {why}"]
    (m / "preprocessor_config.json").write_text("{}")
    assert _fails(m) == []


def test_tokenizers_backend_class_is_a_warning(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m")
    cfg = json.loads((m / "tokenizer_config.json").read_text())
    (m / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": "TokenizersBackend"}))
    warns = [f for f in verify_model_dir(m) if f.level == "warn"]
    assert len(warns) == 1 and "transformers 4.x cannot load" in warns[0].detail
    assert _fails(m) == []


def test_problems_is_the_one_answer_with_the_folder_and_the_fix(tmp_path: Path) -> None:
    m = make_tiny_model(tmp_path / "m")
    assert problems(m) == []
    (m / "tokenizer.json").unlink()
    (only,) = problems(m)
    assert only.startswith(f"{m}: tokenizer: no tokenizer file") and "; copy the tokenizer files" in only
