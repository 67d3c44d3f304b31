"""How much a model prefers the chosen answer over the rejected one, on held-out pairs (train venv).

    .venvs/train/bin/python -m ftk.train.preference_margin --model BASE [--adapter DIR]... --pairs FILE [--json]

For each pair of FILE (alpaca preference pairs: instruction, chosen, rejected; `{{name}}`/`{{author}}` filled
from ASSISTANT_NAME/ASSISTANT_AUTHOR), the prompt is rendered with the model's chat template (system prompt
`--system`, default the CPU recipes' `default_system`) and the margin is
log p(chosen | prompt) - log p(rejected | prompt), summed over the answer tokens and its end-of-turn token.
The base model is scored, then base + each adapter. DPO and ORPO should raise the margins; `ftk eval` shows
the same effect in the generated answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def load_pairs(path: Path) -> list[dict[str, str]]:
    name = os.environ.get("ASSISTANT_NAME", "Ferret")
    author = os.environ.get("ASSISTANT_AUTHOR", "the ftk team")
    text = path.read_text(encoding="utf-8").replace("{{name}}", name).replace("{{author}}", author)
    return [{k: str(v) for k, v in row.items()} for row in json.loads(text)]


def margins(model: Any, tokenizer: Any, pairs: list[dict[str, str]], system: str) -> list[float]:
    # torch is only in the train venv: imported where it is used
    import torch

    out = []
    for pair in pairs:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": pair["instruction"]}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        scores = []
        for answer in (pair["chosen"], pair["rejected"]):
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            a_ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
            ids = torch.tensor([p_ids + a_ids])
            with torch.no_grad():
                logits = model(ids).logits[0, :-1].float()
            logp = torch.log_softmax(logits, dim=-1)
            targets = ids[0, 1:]
            token_logp = logp[torch.arange(len(targets)), targets]
            scores.append(float(token_logp[len(p_ids) - 1 :].sum()))
        out.append(scores[0] - scores[1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Log-prob margin chosen - rejected on held-out preference pairs.")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, action="append", default=[])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--system", default=DEFAULT_SYSTEM)
    parser.add_argument("--json", action="store_true")
    ns = parser.parse_args(argv)
    # transformers and peft are only in the train venv: imported here, not at module level
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    pairs = load_pairs(ns.pairs)
    tokenizer = AutoTokenizer.from_pretrained(ns.model)
    base = AutoModelForCausalLM.from_pretrained(ns.model, dtype=torch.float32)
    base.eval()
    results: dict[str, list[float]] = {"base": margins(base, tokenizer, pairs, ns.system)}
    for adapter in ns.adapter:
        model = PeftModel.from_pretrained(base, adapter)
        model.eval()
        results[str(adapter)] = margins(model, tokenizer, pairs, ns.system)
        base = model.unload()
    if ns.json:
        print(json.dumps(results))
    else:
        for name, values in results.items():
            print(f"{name}: mean margin {sum(values) / len(values):+.2f} over {len(values)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
