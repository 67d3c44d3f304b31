"""Render a LLaMA-Factory recipe (configs/train/*.yaml, configs/merge/*.yaml) with the settings.

A recipe is a plain LLaMA-Factory YAML file whose values may hold placeholders:
  `${KEY}`            the setting KEY (any .env key, or a derived one below); error when it is empty
  `${KEY:-default}`   the setting KEY, or `default` when KEY is empty (the recipe's own value)
A value that is a single placeholder keeps its type (int, float, bool); placeholders inside a longer string
are substituted as text. A key whose value renders to null (`~`, or QUANTIZATION_BIT=0) is left out.
Derived keys: BASE_MODEL_PATH, RUN_DIR, OUTPUT_DIR (runs/<run-id>/adapter), ADAPTER_DIR, MERGED_DIR,
EXPORT_DIR (the temporary export folder next to MERGED_DIR); path settings are made absolute.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ftk.console import EXIT_USAGE, UserError
from ftk.recipes import lf_keys
from ftk.settings import Settings

PREF_LOSSES = ("sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo")  # LLaMA-Factory 0.9.5's pref_loss values
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Smallest image side in pixels a vision-language template can take: patch size x spatial merge size.
PATCH_PIXELS = {"qwen3_vl": 32 * 32, "qwen2_vl": 28 * 28}


@dataclass
class Rendered:
    """A rendered recipe: LLaMA-Factory keys, and for each key where its value came from."""

    kind: str
    recipe: Path
    config: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, key: str) -> str:
        return self.sources.get(key, f"{self.recipe}: {key}")


def export_dir_for(merged: Path) -> Path:
    """Where `llamafactory-cli export` writes before the folder is renamed into place."""
    return merged.parent / f".{merged.name}.partial"


def placeholder_values(s: Settings) -> dict[str, Any]:
    """Every value a placeholder may name: the settings (typed; paths absolute) and derived paths."""
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(s, name)
        if isinstance(value, Path):
            value = "" if str(value) in ("", ".") else str(s.path(name))
        values[name.upper()] = value
    values["DATASETS"] = ",".join(s.dataset_names)
    values["MEDIA_ROOT"] = str(s.resolved_media_root())  # empty MEDIA_ROOT: the dataset dir, as media_dir
    if s.quantization_bit == 0:
        values["QUANTIZATION_BIT"] = None
    values.update(
        BASE_MODEL_PATH=str(s.base_model_path),
        RUN_DIR=str(s.run_dir),
        OUTPUT_DIR=str(s.run_dir / "adapter"),
        ADAPTER_DIR=str(s.resolved_adapter_path),
        MERGED_DIR=str(s.resolved_merged_path),
        EXPORT_DIR=str(export_dir_for(s.resolved_merged_path)),
    )
    return values


def _line_of(text: str, key: str) -> int | None:
    m = re.search(rf"^{re.escape(key)}\s*:", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _substitute(value: Any, values: dict[str, Any], where: str) -> tuple[Any, str | None]:
    """The value with its placeholders filled in, and the setting it came from (when one)."""
    if not isinstance(value, str) or "${" not in value:
        return value, None

    def lookup(m: re.Match[str]) -> Any:
        key, default = m.group(1).upper(), m.group(2)
        if key not in values:
            close = difflib.get_close_matches(key, list(values), n=1)
            hint = f"did you mean ${{{close[0]}}}?" if close else "use a key of .env.example"
            raise UserError(f"{where}: unknown placeholder ${{{m.group(1)}}}; {hint}")
        v = values[key]
        if v is None or v == "":
            if default is None:
                if key == "QUANTIZATION_BIT":
                    return None
                raise UserError(
                    f"{where}: {key} is empty and the recipe gives no default; set {key} in .env "
                    f"or write ${{{key}:-value}} in the recipe"
                )
            return _typed(default)
        return v

    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return lookup(whole), whole.group(1).upper()
    return PLACEHOLDER.sub(lambda m: "" if (v := lookup(m)) is None else str(v), value), None


def _typed(text: str) -> Any:
    """A `--set` or default value as the type it reads as: int, float, bool, null, else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "~"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r} is not key=value; write e.g. --set lora_rank=16", EXIT_USAGE)
        out[key.strip()] = _typed(value)
    return out


def closest_lf_key(key: str) -> str | None:
    match = difflib.get_close_matches(key, list(lf_keys.known()["keys"]), n=1, cutoff=0.6)
    return match[0] if match else None


def _check_key(key: str, where: str) -> None:
    if key in lf_keys.known()["keys"]:
        return
    hint = closest_lf_key(key)
    fix = (
        f"did you mean '{hint}'?" if hint else "see LLaMA-Factory's argument list (ftk/recipes/llamafactory_keys.json)"
    )
    raise UserError(f"{where}: '{key}' is not a LLaMA-Factory {lf_keys.known()['llamafactory']} key; {fix}")


def render(recipe: Path, s: Settings, kind: str, sets: dict[str, Any] | None = None) -> Rendered:
    """Fill a recipe with the settings and `--set` overrides, then validate keys and values."""
    if not recipe.is_file():
        raise UserError(f"recipe {recipe} not found; set {kind.upper()}_RECIPE to a file in configs/{kind}/")
    text = recipe.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{recipe}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{recipe}: a recipe is a mapping of LLaMA-Factory keys to values")
    values = placeholder_values(s)
    out = Rendered(kind=kind, recipe=recipe, config={})
    for key, value in raw.items():
        where = f"{recipe}:{_line_of(text, str(key)) or '?'}: {key}"
        _check_key(str(key), where)
        rendered, setting = _substitute(value, values, where)
        if setting and setting.lower() in s.model_fields_set:
            where = f"{setting} (from .env or the environment, used by {where})"
        out.sources[str(key)] = where
        if rendered is not None:
            out.config[str(key)] = rendered
    if kind == "merge":
        _inherit_from_training(out, s)
    for key, value in (sets or {}).items():
        _check_key(key, f"--set {key}")
        out.sources[key] = f"--set {key}={value}"
        if value is None:
            out.config.pop(key, None)
        else:
            out.config[key] = value
    validate(out)
    return out


def _inherit_from_training(out: Rendered, s: Settings) -> None:
    """A merge writes the chat template the adapter was trained with (runs/<run-id>/train.yaml)."""
    trained = s.run_dir / "train.yaml"
    if not trained.is_file() or s.template:
        return
    cfg = yaml.safe_load(trained.read_text(encoding="utf-8")) or {}
    for key in ("template", "default_system", "image_max_pixels", "video_max_pixels", "trust_remote_code"):
        if key in cfg:
            out.config[key] = cfg[key]
            out.sources[key] = f"{trained}: {key} (the training run's value)"


def patch_pixels(template: str) -> int:
    for prefix, pixels in PATCH_PIXELS.items():
        if template.startswith(prefix):
            return pixels
    return PATCH_PIXELS["qwen2_vl"]


def validate(r: Rendered) -> None:
    """Values LLaMA-Factory would take but that cannot train (or would fail late): each names its source."""
    c, known = r.config, lf_keys.known()
    for key, value in c.items():
        want = known["keys"][key]["type"]
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        }.get(want, True)
        if not ok:
            raise UserError(f"{r.source(key)}: {value!r} is not a valid {want} for '{key}'")
    minimum = {
        "lora_rank": 1,
        "lora_alpha": 1,
        "cutoff_len": 1,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 1,
        "save_steps": 1,
        "logging_steps": 1,
    }
    for key, low in minimum.items():
        if key in c and c[key] < low:
            raise UserError(f"{r.source(key)}: {key}={c[key]} must be >= {low}")
    for key in ("learning_rate", "num_train_epochs", "pref_beta"):
        if key in c and c[key] <= 0:
            raise UserError(f"{r.source(key)}: {key}={c[key]} must be > 0")
    if "quantization_bit" in c and c["quantization_bit"] not in (4, 8):
        raise UserError(
            f"{r.source('quantization_bit')}: quantization_bit={c['quantization_bit']} must be 4 or 8 "
            "(QLoRA), or 0/empty for plain LoRA"
        )
    stage = c.get("stage", "sft")
    if stage == "dpo" and c.get("pref_loss", "sigmoid") not in PREF_LOSSES:
        raise UserError(
            f"{r.source('pref_loss')}: pref_loss={c['pref_loss']!r} is not one of LLaMA-Factory's "
            f"{', '.join(PREF_LOSSES)} (orpo and simpo need no reference model)"
        )
    if stage == "kto" and "pref_loss" in c:
        raise UserError(f"{r.source('pref_loss')}: stage kto has its own loss; drop pref_loss (use stage dpo)")
    template = c.get("template")
    if template is not None:
        templates = known["templates"]
        if template not in templates:
            close = difflib.get_close_matches(str(template), list(templates), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see LLaMA-Factory's template list"
            raise UserError(
                f"{r.source('template')}: template '{template}' is not a LLaMA-Factory "
                f"{known['llamafactory']} template; {hint}"
            )
        if templates[template]["multimodal"]:
            least = patch_pixels(str(template))
            side = int(least**0.5)
            for key in ("image_max_pixels", "video_max_pixels"):
                if key in c and c[key] < least:
                    raise UserError(
                        f"{r.source(key)}: {key}={c[key]} is below one {side}x{side} patch "
                        f"({least} pixels) of template {template}; use at least {least}"
                    )
    if r.kind == "train":
        for key in ("model_name_or_path", "output_dir", "template"):
            if not c.get(key):
                raise UserError(f"{r.recipe}: '{key}' is missing; a train recipe needs it")
    if r.kind == "merge":
        for key in ("model_name_or_path", "adapter_name_or_path", "export_dir"):
            if not c.get(key):
                raise UserError(f"{r.recipe}: '{key}' is missing; a merge recipe needs it")


def to_yaml(r: Rendered) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (
        f"# Rendered by `ftk config render {r.kind}` from {r.recipe} at {stamp}\n"
        f"# for llamafactory {lf_keys.known()['llamafactory']}. This is the exact config the run used.\n"
    )
    return header + yaml.safe_dump(r.config, sort_keys=False, allow_unicode=True, width=120)
