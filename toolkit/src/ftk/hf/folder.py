"""Is a folder a complete Hugging Face model that LLaMA-Factory and vLLM load? Every problem, one line each.

Checks: config.json, weights (safetensors headers intact, every shard an index names present), tokenizer
files, a chat template, and the processor files of vision-language models. Cheap: reads headers, not
the weights. `problems` is the one answer every stage asks for; `verify_model_dir` gives the table rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ftk.hf.tensors import safetensors_problem

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


@dataclass(frozen=True)
class Finding:
    level: Literal["ok", "warn", "fail"]
    what: str  # the part checked: config, weights, tokenizer, chat template, processor
    detail: str  # what was found, naming the file
    fix: str = ""


def _load_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot read {path.name}: {err}"
    except json.JSONDecodeError as err:
        return None, f"{path.name}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, ""


def _check_weights(folder: Path) -> list[Finding]:
    redownload = "download the model again (scripts/download.sh) or copy the missing files"
    out: list[Finding] = []
    shards = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    indexed: set[str] = set()
    for index_name in INDEX_FILES:
        index = folder / index_name
        if not index.is_file():
            continue
        data, err = _load_json(index)
        if data is None or not isinstance(data.get("weight_map"), dict):
            out.append(Finding("fail", "weights", err or f"{index_name} has no weight_map", redownload))
            continue
        listed = sorted(set(data["weight_map"].values()))
        indexed.update(listed)
        missing = [s for s in listed if not (folder / s).is_file()]
        if missing:
            out.append(
                Finding(
                    "fail",
                    "weights",
                    f"{index_name} lists {len(listed)} shards, missing: "
                    + ", ".join(missing[:5])
                    + (" ..." if len(missing) > 5 else ""),
                    redownload,
                )
            )
    if not shards:
        out.append(Finding("fail", "weights", "no weights (*.safetensors or *.bin)", redownload))
        return out
    for shard in shards:
        if shard.suffix == ".safetensors" and (problem := safetensors_problem(shard)):
            out.append(Finding("fail", "weights", problem, redownload))
    if not any(f.level == "fail" for f in out):
        total = sum(s.stat().st_size for s in shards)
        out.append(
            Finding(
                "ok",
                "weights",
                f"{len(shards)} file(s), {total / 2**20:.0f} MiB"
                + (f", index consistent ({len(indexed)} shards)" if indexed else ""),
            )
        )
    return out


def _check_tokenizer(folder: Path, tok_cfg: dict[str, Any] | None) -> list[Finding]:
    out: list[Finding] = []
    present = [n for n in TOKENIZER_FILES if (folder / n).is_file()]
    if not present:
        out.append(
            Finding(
                "fail",
                "tokenizer",
                "no tokenizer file (" + ", ".join(TOKENIZER_FILES) + ")",
                "copy the tokenizer files of the base model into the folder, or download it again",
            )
        )
    elif "tokenizer.json" in present:
        data, err = _load_json(folder / "tokenizer.json")
        if data is None:
            out.append(Finding("fail", "tokenizer", err, "download the model again"))
    if present and not any(f.level == "fail" for f in out):
        out.append(Finding("ok", "tokenizer", ", ".join(present)))
    if tok_cfg and tok_cfg.get("tokenizer_class") == "TokenizersBackend":
        out.append(
            Finding(
                "warn",
                "tokenizer",
                "tokenizer_config.json names TokenizersBackend, which transformers 4.x cannot load",
                "set tokenizer_class to PreTrainedTokenizerFast (or the model's class)",
            )
        )
    return out


def _check_chat_template(folder: Path, tok_cfg: dict[str, Any] | None) -> Finding:
    if tok_cfg and tok_cfg.get("chat_template"):
        return Finding("ok", "chat template", "in tokenizer_config.json")
    for name in CHAT_TEMPLATE_FILES:
        if (folder / name).is_file():
            return Finding("ok", "chat template", name)
    return Finding(
        "fail",
        "chat template",
        "none in tokenizer_config.json, chat_template.jinja or chat_template.json",
        "use the chat/instruct variant of the model, or add the chat_template of the template you train with",
    )


def verify_model_dir(folder: Path) -> list[Finding]:
    """Everything wrong (and right) with a model folder; `fail` findings make it unusable."""
    if not folder.is_dir():
        return [Finding("fail", "folder", f"{folder} does not exist", "run the download stage or fix MODEL_ID")]
    out: list[Finding] = []
    config, err = _load_json(folder / "config.json") if (folder / "config.json").is_file() else (None, "")
    if config is None:
        out.append(
            Finding(
                "fail",
                "config",
                err or "no config.json",
                "not a Hugging Face model folder: download it again or point MODEL_ID at the right folder",
            )
        )
    else:
        arch = ",".join(config.get("architectures") or []) or config.get("model_type", "?")
        out.append(Finding("ok", "config", f"config.json ({arch})"))
    out += _check_weights(folder)
    tok_cfg = None
    if (folder / "tokenizer_config.json").is_file():
        tok_cfg, err = _load_json(folder / "tokenizer_config.json")
        if tok_cfg is None:
            out.append(Finding("fail", "tokenizer", err, "download the model again"))
    out += _check_tokenizer(folder, tok_cfg)
    out.append(_check_chat_template(folder, tok_cfg))
    vision = bool(config and ("vision_config" in config or "vision_tower" in config))
    if vision or any((folder / n).is_file() for n in PROCESSOR_FILES):
        found = [n for n in PROCESSOR_FILES if (folder / n).is_file()]
        if found:
            out.append(Finding("ok", "processor", ", ".join(found)))
        else:
            out.append(
                Finding(
                    "fail",
                    "processor",
                    "vision-language model (config has vision_config) without preprocessor_config.json",
                    "copy preprocessor_config.json from the base model; "
                    "without it images are not preprocessed as in training",
                )
            )
    return out


def failures(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "fail"]


def problems(folder: Path) -> list[str]:
    """Is `folder` a complete model? [] when it is, else one line per missing or damaged part, with its fix."""
    return [
        f"{folder}: {f.what}: {f.detail}" + (f"; {f.fix}" if f.fix else "") for f in failures(verify_model_dir(folder))
    ]
