"""Make a `llamafactory-cli export` folder servable by vLLM and by current and older transformers.

The export can lack what the base had (processor and preprocessor configs, chat template, generation config),
and transformers 5 writes a tokenizer_config.json (`TokenizersBackend`, list `extra_special_tokens`) and a
config.json (`rope_parameters` only, `dtype`) that transformers 4.x cannot read. Every edit is atomic.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ftk.files import write_atomic

# Files copied from the base when the export lacks them, with what each is for (also the verify table).
FILE_PURPOSES: dict[str, str] = {
    "config.json": "model architecture and sizes",
    "generation_config.json": "default sampling settings and stop tokens (vLLM, generate())",
    "tokenizer.json": "the tokenizer (fast, tokenizers library)",
    "tokenizer.model": "the tokenizer (sentencepiece)",
    "vocab.json": "tokenizer vocabulary (BPE)",
    "merges.txt": "tokenizer merges (BPE)",
    "tokenizer_config.json": "tokenizer class, special tokens, chat template",
    "special_tokens_map.json": "special tokens (older transformers)",
    "added_tokens.json": "tokens added to the vocabulary",
    "chat_template.jinja": "the chat template the server renders prompts with",
    "chat_template.json": "the processor's chat template (vision-language models)",
    "preprocessor_config.json": "image preprocessing: resize, patch size, pixel limits (vision-language)",
    "processor_config.json": "the processor that joins tokenizer and image/video processors",
    "video_preprocessor_config.json": "video frame preprocessing (vision-language)",
    "model.safetensors": "merged weights (one shard)",
    "model.safetensors.index.json": "which shard holds each weight",
    "Modelfile": "Ollama model file written by LLaMA-Factory",
}
COPY_FROM_BASE = (
    "generation_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
)


def purpose(name: str) -> str:
    if name in FILE_PURPOSES:
        return FILE_PURPOSES[name]
    if name.endswith(".safetensors"):
        return "merged weights (a shard)"
    return ""


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _fix_tokenizer_config(export: Path, base: Path, actions: list[str]) -> None:
    file = export / "tokenizer_config.json"
    if not file.is_file():
        if (base / "tokenizer_config.json").is_file():
            shutil.copy2(base / "tokenizer_config.json", file)
            actions.append("tokenizer_config.json: copied from the base")
        return
    cfg = _read(file)
    base_cfg = _read(base / "tokenizer_config.json") if (base / "tokenizer_config.json").is_file() else {}
    changed = []
    if cfg.get("tokenizer_class") in (None, "TokenizersBackend"):
        cls = base_cfg.get("tokenizer_class")
        cfg["tokenizer_class"] = cls if cls and cls != "TokenizersBackend" else "PreTrainedTokenizerFast"
        changed.append(f"tokenizer_class {cfg['tokenizer_class']} (transformers 4.x has no TokenizersBackend)")
    extra = cfg.get("extra_special_tokens")
    if isinstance(extra, list):
        del cfg["extra_special_tokens"]
        if extra and "additional_special_tokens" not in cfg:
            cfg["additional_special_tokens"] = extra
        changed.append("extra_special_tokens list -> additional_special_tokens (transformers 4.x expects a dict)")
    if not cfg.get("chat_template"):
        template = None
        for src in (export / "chat_template.jinja", base / "chat_template.jinja"):
            if src.is_file():
                template = src.read_text(encoding="utf-8")
                break
        template = template or base_cfg.get("chat_template")
        if template:
            cfg["chat_template"] = template
            changed.append("chat_template embedded (older readers ignore chat_template.jinja)")
    if changed:
        _write(file, cfg)
        actions.extend(f"tokenizer_config.json: {c}" for c in changed)


def _fix_config(export: Path, actions: list[str]) -> None:
    file = export / "config.json"
    cfg = _read(file)
    changed = []
    for section in (cfg, cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else None):
        if section is None:
            continue
        rope = section.get("rope_parameters")
        if isinstance(rope, dict) and "rope_theta" in rope and "rope_theta" not in section:
            section["rope_theta"] = rope["rope_theta"]
            changed.append("rope_theta at the top level (transformers 4.x)")
    if "dtype" in cfg and "torch_dtype" not in cfg:
        cfg["torch_dtype"] = cfg["dtype"]
        changed.append("torch_dtype next to dtype (transformers 4.x)")
    if changed:
        _write(file, cfg)
        actions.extend(f"config.json: {c}" for c in changed)


def make_servable(export: Path, base: Path) -> list[str]:
    """Fill in and fix the export folder; return what was done, one line each."""
    if not (export / "config.json").is_file():
        raise FileNotFoundError(f"{export}/config.json missing: the export did not complete")
    actions: list[str] = []
    for name in COPY_FROM_BASE:
        src, dst = base / name, export / name
        if src.is_file() and not dst.exists():
            shutil.copy2(src, dst)
            actions.append(f"{name}: copied from the base")
    _fix_tokenizer_config(export, base, actions)
    _fix_config(export, actions)
    return actions
