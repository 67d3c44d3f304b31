"""Helpers run by the train venv's python (peft + transformers) for the serve tests, as a script:

python lora_tools.py adapter MODEL OUT --r 8 [--seed 0] [--scale 0.2]
    a LoRA adapter for MODEL with random A and B (so its output differs from the base), saved like a trainer
python lora_tools.py generate MODEL [--adapter DIR] --prompt TEXT [--prompt TEXT]... [--max-new-tokens N]
    greedy fp32 answers through the model's chat template (the transformers+PEFT reference), JSON on stdout
"""

from __future__ import annotations

import argparse
import json

import torch


def make_adapter(model_dir: str, out: str, r: int, seed: int, scale: float) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        target_modules=[
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():  # small random B: the answer changes but stays text, not noise
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    peft_model.save_pretrained(out)


def generate(model_dir: str, adapter: str | None, prompts: list[str], max_new_tokens: int) -> list[str]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    answers = []
    for prompt in prompts:
        ids = tok.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.no_grad():
            out = model.generate(
                **ids,
                do_sample=False,
                max_new_tokens=max_new_tokens,
                pad_token_id=tok.pad_token_id or tok.eos_token_id,
            )
        answers.append(tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    return answers


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("adapter")
    a.add_argument("model")
    a.add_argument("out")
    a.add_argument("--r", type=int, default=8)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--scale", type=float, default=0.2)
    g = sub.add_parser("generate")
    g.add_argument("model")
    g.add_argument("--adapter")
    g.add_argument("--prompt", action="append", required=True)
    g.add_argument("--max-new-tokens", type=int, default=24)
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "adapter":
        make_adapter(args.model, args.out, args.r, args.seed, args.scale)
    else:
        print(json.dumps(generate(args.model, args.adapter, args.prompt, args.max_new_tokens)))


if __name__ == "__main__":
    main()
