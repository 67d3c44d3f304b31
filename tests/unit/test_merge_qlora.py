"""Which adapters are QLoRA: read from the run folder (manifest.json first, then the rendered train.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

from ftk.merge.qlora import training_quantization


def _adapter(run: Path) -> Path:
    (run / "adapter").mkdir(parents=True)
    return run / "adapter"


def test_manifest_config_names_the_bits_and_type(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path / "r")
    config = {"quantization_bit": 4, "quantization_type": "fp4", "double_quantization": False}
    (tmp_path / "r" / "manifest.json").write_text(json.dumps({"config": config}))
    q = training_quantization(adapter)
    assert q is not None and (q.bits, q.quant_type, q.double_quant) == (4, "fp4", False)
    assert q.source == tmp_path / "r" / "manifest.json"


def test_train_yaml_when_there_is_no_manifest_with_llamafactory_defaults(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path / "r")
    (tmp_path / "r" / "train.yaml").write_text("finetuning_type: lora\nquantization_bit: 4\n")
    q = training_quantization(adapter)
    assert q is not None and (q.bits, q.quant_type, q.double_quant) == (4, "nf4", True)


def test_plain_lora_and_unknown_runs_are_not_qlora(tmp_path: Path) -> None:
    plain = _adapter(tmp_path / "plain")
    (tmp_path / "plain" / "manifest.json").write_text(json.dumps({"config": {"quantization_bit": None}}))
    assert training_quantization(plain) is None
    assert training_quantization(_adapter(tmp_path / "nothing")) is None
    broken = _adapter(tmp_path / "broken")
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    (tmp_path / "broken" / "train.yaml").write_text("quantization_bit: 8\n")
    q = training_quantization(broken)
    assert q is not None and q.bits == 8  # a damaged manifest falls back to the rendered config
