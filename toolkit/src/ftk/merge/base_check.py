"""Is this adapter trained on this base model? Decided without loading weights (safetensors headers only).

1. adapter_config.json's base_model_name_or_path resolves to the same folder: yes.
2. it names another folder that exists: its config.json must describe the same model (architecture, sizes).
3. always: every LoRA A/B matrix must fit the shape of the base weight it adapts. So a model that was moved
   (path differs, same weights) passes, and an adapter from another base fails, naming the module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftk.console import UserError
from ftk.hf.tensors import safetensors_header

FINGERPRINT = (
    "architectures",
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)


def safetensors_shapes(folder: Path) -> dict[str, list[int]]:
    """Tensor name -> shape for every *.safetensors file of a folder, read from the file headers."""
    shapes: dict[str, list[int]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        try:
            header = safetensors_header(file)
        except (OSError, ValueError) as err:
            raise UserError(f"{err}; copy or train {folder.name} again (the file is damaged)") from None
        shapes.update({name: list(meta["shape"]) for name, meta in header.items()})
    return shapes


def fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    return {k: config.get(k, text.get(k)) for k in FINGERPRINT}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None


def _base_key(lora_key: str) -> tuple[str, str] | None:
    """'base_model.model.X.lora_A.weight' -> ('X.weight', 'A')."""
    for part in ("A", "B"):
        marker = f".lora_{part}."
        if marker in lora_key:
            stem = lora_key.split(marker)[0].removeprefix("base_model.model.")
            return f"{stem}.weight", part
    return None


def check(adapter: Path, base: Path) -> list[str]:
    """Raise UserError when the adapter does not belong to `base`; return notes (e.g. 'base was moved')."""
    cfg_file = adapter / "adapter_config.json"
    if not cfg_file.is_file():
        raise UserError(
            f"{cfg_file} not found: {adapter} is not a LoRA adapter folder; train one first "
            "(scripts/train.sh) or set ADAPTER_PATH"
        )
    if not (base / "config.json").is_file():
        raise UserError(f"{base}/config.json not found: the base model folder is incomplete; fix MODEL_ID")
    notes: list[str] = []
    recorded = str(_read_json(cfg_file).get("base_model_name_or_path") or "")
    base_cfg = _read_json(base / "config.json")
    rec_path = Path(recorded).expanduser() if recorded else None
    if rec_path is not None and rec_path.is_dir() and rec_path.resolve() == base.resolve():
        notes.append(f"adapter base {recorded} is {base}")
    elif rec_path is not None and (rec_path / "config.json").is_file():
        want, have = fingerprint(_read_json(rec_path / "config.json")), fingerprint(base_cfg)
        diff = {k: (want[k], have[k]) for k in FINGERPRINT if want[k] != have[k]}
        if diff:
            shown = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())
            raise UserError(
                f"{cfg_file}: the adapter was trained on {recorded}, which is a different model from "
                f"{base} ({shown}); merge it into its own base (set MODEL_ID) or retrain on this one"
            )
        notes.append(f"adapter base {recorded} is another folder with the same config as {base}")
    else:
        notes.append(f"adapter base {recorded or '(not recorded)'} is not on this host; checking shapes only")
    base_shapes = safetensors_shapes(base)
    lora_shapes = safetensors_shapes(adapter)
    if not lora_shapes:
        raise UserError(f"{adapter} has no adapter_model.safetensors; the training did not finish")
    matched = 0
    for key, shape in lora_shapes.items():
        parsed = _base_key(key)
        if parsed is None:
            continue
        base_key, part = parsed
        target = base_shapes.get(base_key)
        if target is None or len(target) != 2 or len(shape) != 2:
            continue
        fits = shape[1] == target[1] if part == "A" else shape[0] == target[0]
        if not fits:
            raise UserError(
                f"{adapter}: LoRA matrix {key} {shape} does not fit {base_key} {target} of {base}: "
                f"the adapter was trained on another base ({recorded or 'unknown'}); merge it into "
                "its own base (set MODEL_ID) or retrain on this one"
            )
        matched += 1
    if matched == 0:
        raise UserError(
            f"{adapter}: none of its LoRA modules names a weight of {base} (adapter trained on "
            f"{recorded or 'an unknown base'}); merge it into its own base or retrain on this one"
        )
    notes.append(f"{matched} LoRA matrices fit the base weights")
    return notes
