"""Does LLaMA-Factory's `template:` render the same prompt as the model's own chat template?

Runs in the train venv (it imports LLaMA-Factory): `python -m ftk.train.template_drift runs/<id>/train.yaml`.
Training sees LLaMA-Factory's rendering; a served model sees its tokenizer's chat template. Any difference
(default system prompt, <think> blocks, BOS/EOS) means the adapter is served a prompt it never trained on.
Exit 0: identical; 3: drift (a readable diff is printed); 1: the check could not run.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXIT_SAME, EXIT_ERROR, EXIT_DRIFT = 0, 1, 3

SAMPLES: list[tuple[str, list[dict[str, str]]]] = [
    (
        "no system message",
        [
            {"role": "user", "content": "Who are you?"},
            {"role": "assistant", "content": "I am an assistant."},
        ],
    ),
    (
        "with a system message",
        [
            {"role": "system", "content": "You answer in one sentence."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "It is 4."},
        ],
    ),
    (
        "two turns",
        [
            {"role": "user", "content": "Hello!"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
        ],
    ),
]


@dataclass
class Difference:
    sample: str
    part: str  # "serving prompt" or "training text"
    diff: str


def _visible(text: str) -> str:
    return text.replace("\n", "\\n\n")


def _text_diff(ours: str, theirs: str) -> str:
    lines = difflib.unified_diff(
        _visible(theirs).splitlines(),
        _visible(ours).splitlines(),
        "model chat template",
        "LLaMA-Factory template",
        lineterm="",
        n=2,
    )
    return "\n".join(lines)


def _load(model: str, trust: bool) -> tuple[Any, Any, str]:
    """Two tokenizers (LLaMA-Factory may rewrite one's chat template) and the model's own chat template."""
    # transformers and LLaMA-Factory in functions: --help and the config parsing need neither
    from transformers import AutoProcessor, AutoTokenizer

    ours = AutoTokenizer.from_pretrained(model, trust_remote_code=trust)
    theirs = AutoTokenizer.from_pretrained(model, trust_remote_code=trust)
    template = theirs.chat_template
    if not template:
        try:
            template = AutoProcessor.from_pretrained(model, trust_remote_code=trust).chat_template
        except Exception:  # no processor: a text model without a chat template
            template = None
    if not template:
        raise LookupError(
            f"{model} has no chat template (tokenizer_config.json, chat_template.jinja or "
            "chat_template.json); a served chat model needs one"
        )
    return ours, theirs, template


def compare(config: dict[str, Any]) -> list[Difference]:
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments

    model = str(config["model_name_or_path"])
    ours, theirs, chat_template = _load(model, bool(config.get("trust_remote_code", False)))
    data_args = DataArguments(
        template=config["template"],
        default_system=config.get("default_system"),
        enable_thinking=config.get("enable_thinking", True),
    )
    template = get_template_and_fix_tokenizer(ours, data_args)

    def served(messages: list[dict[str, str]], generation: bool) -> str:
        return theirs.apply_chat_template(
            messages, chat_template=chat_template, tokenize=False, add_generation_prompt=generation
        )

    diffs: list[Difference] = []
    for name, messages in SAMPLES:
        system = messages[0]["content"] if messages[0]["role"] == "system" else None
        turns = messages[1:] if system is not None else messages
        prompt_ids, _ = template.encode_oneturn(ours, turns, system)
        lf_prompt = ours.decode(prompt_ids, skip_special_tokens=False)
        hf_prompt = served(messages[:-1], True)
        if lf_prompt != hf_prompt:
            diffs.append(Difference(name, "serving prompt", _text_diff(lf_prompt, hf_prompt)))
            continue
        pairs = template.encode_multiturn(ours, turns, system)
        lf_full = ours.decode([t for p, r in pairs for t in p + r], skip_special_tokens=False)
        hf_full = served(messages, False)
        if lf_full.rstrip("\n") != hf_full.rstrip("\n"):
            diffs.append(Difference(name, "training text", _text_diff(lf_full, hf_full)))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a rendered train recipe (runs/<id>/train.yaml)")
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    try:
        diffs = compare(config)
    except LookupError as err:
        print(f"template check: {err}", file=sys.stderr)
        return EXIT_DRIFT
    except Exception as err:  # LLaMA-Factory or transformers could not load the tokenizer/template
        print(f"template check could not run: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps([d.__dict__ for d in diffs], indent=1))
    name = config["template"]
    if not diffs:
        print(f"template {name} renders the same prompts as the model's chat template ({len(SAMPLES)} samples)")
        return EXIT_SAME
    print(
        f"template drift: LLaMA-Factory template '{name}' (default_system "
        f"{config.get('default_system')!r}) renders a different prompt than {config['model_name_or_path']}'s "
        "chat template, which serving uses. The adapter would be served prompts it never trained on. Fix: "
        "choose the template that matches, or set default_system in the recipe.",
        file=sys.stderr,
    )
    for d in diffs:
        print(
            f"--- sample '{d.sample}', {d.part} (- model chat template, + LLaMA-Factory):\n{d.diff}",
            file=sys.stderr,
        )
    return EXIT_DRIFT


if __name__ == "__main__":
    raise SystemExit(main())
