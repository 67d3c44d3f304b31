"""Run by the train venv's python (peft + transformers with the Qwen-VL classes) for the VL serve tests:

python vl_tools.py adapter MODEL OUT [--part language|vision] [--r 8] [--seed 0]
    a LoRA adapter with random A and B on the language model's or the vision tower's linear layers of MODEL,
    saved the way PEFT/LLaMA-Factory save one (so module names are the training framework's)
"""

from __future__ import annotations

import argparse

import torch

TARGETS = {
    # LLaMA-Factory's `lora_target: all` with the vision tower frozen: every linear layer of the language model
    "language": r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
    # the vision tower's attention and MLP only (what vLLM ignores without --enable-tower-connector-lora)
    "vision": r".*visual\.blocks.*\.(qkv|proj|linear_fc1|linear_fc2)",
}


def make_adapter(model_dir: str, out: str, part: str, r: int, seed: int) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=TARGETS[part], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("adapter")
    a.add_argument("model")
    a.add_argument("out")
    a.add_argument("--part", choices=sorted(TARGETS), default="language")
    a.add_argument("--r", type=int, default=8)
    a.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_adapter(args.model, args.out, args.part, args.r, args.seed)


if __name__ == "__main__":
    main()
