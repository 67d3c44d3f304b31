"""Build a tiny random Qwen3-VL or Qwen2-VL model folder offline: weights, tokenizer, processor, template.

No hub is reachable here, so everything is made locally and deterministically (fixed seed, fixed corpus):
- a byte-level BPE tokenizer (merges learnt from a built-in corpus) plus the Qwen-VL special tokens
  (`<|im_start|>`, `<|im_end|>`, `<|vision_start|>`, `<|image_pad|>`, `<|video_pad|>`, ...);
- the processor (image processor, video processor, tokenizer, chat template) as the real models ship it;
- a randomly initialised model with the real architecture at a tiny size, head size 64 (one that vLLM's CPU
  attention supports), saved as float32 safetensors (about 3 MB).

It needs transformers with the VL classes and torchvision (the video processors use it): run it in the train
venv (`ftk tiny-vl build` re-runs itself there when called from another venv).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftk.files import atomic_dir, sha256_file
from ftk.vl.chat_template import chat_template

MANIFEST = "ftk-manifest.json"
BUILDER_VERSION = 2  # bump when the output changes, so `build` rebuilds an older folder

# Token strings of the Qwen2/Qwen3 tokenizers. The special ones never split; the others are plain added ones.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]

# What the BPE merges are learnt from: the words of the project's data sets and of chat turns.
_CORPUS = [
    "What shape is in the image? The image shows a red circle on a white background.",
    "What colour is the shape? It is a blue square. It is a green triangle. It is a yellow star.",
    "How many shapes are there? There are two shapes: a small circle and a large rectangle.",
    "Describe the picture. A purple hexagon in the top left corner, an orange ellipse at the bottom.",
    "Who are you? I am an assistant made by the team. I can answer questions about images and text.",
    "The capital of France is Paris. Hello! How can I help you today? Please answer briefly.",
    "You are a helpful assistant. The user asks a question and the assistant answers it.",
    "left right top bottom centre center middle big small large tiny one two three four five six",
    "0 1 2 3 4 5 6 7 8 9 10 100 2024 2025 2026, . ! ? : ; ' \" ( ) [ ] { } - _ / \\ * + = < > | # @",
]


@dataclass(frozen=True)
class Arch:
    """One supported architecture: what differs between Qwen2-VL and Qwen3-VL at build time."""

    name: str
    model_type: str
    patch_size: int
    default_system: str
    template: str  # the LLaMA-Factory template that matches the chat template written here


ARCHS: dict[str, Arch] = {
    "qwen3vl": Arch("qwen3vl", "qwen3_vl", 16, "", "qwen3_vl_nothink"),
    "qwen2vl": Arch("qwen2vl", "qwen2_vl", 14, "You are a helpful assistant.", "qwen2_vl"),
}

# Sizes: tiny, but shaped like the real thing (GQA, several layers, head size vLLM's CPU attention supports).
HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, HEAD_DIM = 128, 256, 2, 2, 1, 64
VISION_HIDDEN, VISION_DEPTH, VISION_HEADS = 64, 2, 2
MAX_POSITIONS = 4096
# Processor pixel budget: one image is between 32x32 and 256x256 pixels after resizing.
MIN_PIXELS, MAX_PIXELS = 32 * 32, 256 * 256
VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS = 32 * 32, 128 * 128


def build_tokenizer(arch: Arch) -> Any:
    """A byte-level BPE tokenizer with the Qwen-VL special tokens and the chat template."""
    # tokenizers, transformers and torch in functions only: the manifest check runs in any venv, the build in
    # one with the VL classes and torchvision (`ftk tiny-vl build` re-runs itself in the train venv)
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
        padding_side="left" if arch.model_type == "qwen3_vl" else "right",
    )
    fast.chat_template = chat_template(arch.default_system)
    return fast


def _vocab_size(tokenizer: Any) -> int:
    return (len(tokenizer) + 63) // 64 * 64  # padded like the real models' embedding tables


def _image_processor_class() -> Any:
    # transformers 5.x: the torchvision-backed processor (the "Fast" name is deprecated there).
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor


def build_processor(arch: Arch, tokenizer: Any) -> Any:
    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    video_size = {"shortest_edge": VIDEO_MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS}
    common = {"patch_size": arch.patch_size, "temporal_patch_size": 2, "merge_size": 2}
    if arch.model_type == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        half = [0.5, 0.5, 0.5]
        image = _image_processor_class()(size=size, image_mean=half, image_std=half, **common)
        video = Qwen3VLVideoProcessor(size=video_size, image_mean=half, image_std=half, fps=2, **common)
        return Qwen3VLProcessor(
            image_processor=image,
            tokenizer=tokenizer,
            video_processor=video,
            chat_template=tokenizer.chat_template,
        )
    from transformers import Qwen2VLProcessor, Qwen2VLVideoProcessor

    image = _image_processor_class()(size=size, **common)
    video = Qwen2VLVideoProcessor(size=video_size, **common)
    return Qwen2VLProcessor(
        image_processor=image,
        tokenizer=tokenizer,
        video_processor=video,
        chat_template=tokenizer.chat_template,
    )


def build_config(arch: Arch, tokenizer: Any) -> Any:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    token_ids = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    text = {
        "vocab_size": _vocab_size(tokenizer),
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": MAX_POSITIONS,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        # An untied head: tied, a random model copies its last input token ("\n" after the chat prompt) forever,
        # and `ftk smoke` reads an empty answer (seen on an H100 with gpu-check).
        "tie_word_embeddings": False,
        "dtype": "float32",
    }
    # M-RoPE: the rotary half of a head (HEAD_DIM / 2 = 32) split into temporal, height and width sections.
    if arch.model_type == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text.update(
            head_dim=HEAD_DIM,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 5000000.0,
                "mrope_section": [12, 10, 10],
                "mrope_interleaved": True,
            },
        )
        vision = {
            "depth": VISION_DEPTH,
            "hidden_size": VISION_HIDDEN,
            "intermediate_size": VISION_HIDDEN * 2,
            "num_heads": VISION_HEADS,
            "patch_size": arch.patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": HIDDEN,
            "num_position_embeddings": 576,  # a 24x24 grid, interpolated for other sizes
            "deepstack_visual_indexes": [0],
        }
        return Qwen3VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **token_ids)
    from transformers import Qwen2VLConfig

    # Qwen2 has no head_dim key: heads = hidden / head_dim.
    text.update(
        num_attention_heads=HIDDEN // HEAD_DIM,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [12, 10, 10]},
    )
    vision = {
        "depth": VISION_DEPTH,
        "embed_dim": VISION_HIDDEN,
        "hidden_size": HIDDEN,
        "mlp_ratio": 2,
        "num_heads": VISION_HEADS,
        "patch_size": arch.patch_size,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=False, **token_ids)


def _model_class(arch: Arch) -> Any:
    if arch.model_type == "qwen3_vl":
        from transformers import Qwen3VLForConditionalGeneration

        return Qwen3VLForConditionalGeneration
    from transformers import Qwen2VLForConditionalGeneration

    return Qwen2VLForConditionalGeneration


def _silence_empty_tokens(model: Any, tokenizer: Any) -> None:
    """Zero the head rows of ids that decode to no visible text (padding rows, special tokens, whitespace): their
    logits stay below the best real token's, so a greedy answer of the random model is never empty."""
    import torch

    ids = [i for i in range(len(tokenizer)) if not tokenizer.decode([i], skip_special_tokens=True).strip()]
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[len(tokenizer) :].zero_()
        head[ids] = 0.0  # (indexing with a list copies: assign, not zero_())


def _inline_chat_template(out: Path, template: str) -> None:
    """Also keep the chat template in tokenizer_config.json, where transformers 4.x and other readers look."""
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = template
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"  # the same tokenizer.json reader in transformers 4.x and 5.x
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def _generation_config(out: Path, tokenizer: Any) -> None:
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    gen = {"bos_token_id": pad, "eos_token_id": [eos, pad], "pad_token_id": pad}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")


def manifest_matches(out: Path, arch: str, seed: int) -> bool:
    """True when `out` holds a complete build of `arch` with `seed` from this builder version."""
    path = out / MANIFEST
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return False
    if (data.get("arch"), data.get("seed"), data.get("builder_version")) != (arch, seed, BUILDER_VERSION):
        return False
    return all((out / name).is_file() and sha256_file(out / name) == sha for name, sha in data.get("files", {}).items())


def build(arch_name: str, out: Path, seed: int = 0) -> dict[str, Any]:
    """Build the folder `out` atomically (a temporary sibling renamed into place); return the manifest."""
    import torch
    import transformers

    arch = ARCHS[arch_name]
    with atomic_dir(out.resolve()) as tmp:
        torch.manual_seed(seed)
        tokenizer = build_tokenizer(arch)
        config = build_config(arch, tokenizer)
        model = _model_class(arch)(config).to(torch.float32).eval()
        _silence_empty_tokens(model, tokenizer)
        model.save_pretrained(tmp, safe_serialization=True)
        processor = build_processor(arch, tokenizer)
        processor.save_pretrained(tmp)
        # Also the per-part files (transformers 5.6 writes only processor_config.json): readers that predate
        # it, and checks of merged folders, look for preprocessor_config.json.
        processor.image_processor.save_pretrained(tmp)
        processor.video_processor.save_pretrained(tmp)
        _inline_chat_template(tmp, tokenizer.chat_template)
        _generation_config(tmp, tokenizer)
        params = sum(p.numel() for p in model.parameters())
        manifest = {
            "arch": arch.name,
            "model_type": arch.model_type,
            "architecture": type(model).__name__,
            "llamafactory_template": arch.template,
            "seed": seed,
            "builder_version": BUILDER_VERSION,
            "parameters": params,
            "vocab_size": config.get_text_config().vocab_size,
            "head_dim": HEAD_DIM,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
            "files": {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        for path in tmp.iterdir():
            path.chmod(0o644)
        tmp.chmod(0o755)
    return manifest
