"""Does LLaMA-Factory encode an image conversation into the same tokens as the model's own processor?

Training sees LLaMA-Factory's `template:` and multimodal plugin (which expands `<image>` into vision tokens);
a served model sees its chat template and processor. For a vision-language model both must agree on the
placeholder layout (`<|vision_start|><|image_pad|>...<|vision_end|>`), the number of image tokens (patch and
merge sizes, pixel budget) and the surrounding ChatML turn. Runs in the train venv (it imports LLaMA-Factory):

    python -m ftk.vl.image_prompt MODEL_DIR TEMPLATE [--image-max-pixels N]

Prints one JSON object (same, both token lists, both texts, image token count). Exit 0: same; 3: they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_SAME, EXIT_DIFF = 0, 3
QUESTION = "What shape is this?"


def sample_image() -> Any:
    # Pillow and LLaMA-Factory (train venv only) in functions: the toolkit venv's tests import QUESTION from here
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (112, 112), "white")
    ImageDraw.Draw(image).ellipse((18, 18, 94, 94), fill=(220, 32, 32))
    return image


def compare(model: str, template_name: str, image_max_pixels: int | None = None) -> dict[str, Any]:
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import get_infer_args
    from llamafactory.model import load_tokenizer

    args: dict[str, Any] = {"model_name_or_path": model, "template": template_name}
    if image_max_pixels:
        args["image_max_pixels"] = image_max_pixels
    model_args, data_args, _, _ = get_infer_args(args)
    loaded = load_tokenizer(model_args)
    tokenizer, processor = loaded["tokenizer"], loaded["processor"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    image = sample_image()

    messages = [{"role": "user", "content": f"<image>{QUESTION}"}, {"role": "assistant", "content": ""}]
    messages = template.mm_plugin.process_messages(messages, [image], [], [], processor)
    lf_ids, _ = template.encode_oneturn(tokenizer, messages, None)
    lf_ids, _ = template.mm_plugin.process_token_ids(lf_ids, None, [image], [], [], tokenizer, processor)

    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    hf_ids = processor(text=[text], images=[image])["input_ids"][0]
    hf_ids = [int(t) for t in hf_ids]
    image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    return {
        "same": list(lf_ids) == hf_ids,
        "template": template_name,
        "image_tokens": hf_ids.count(image_token),
        "llamafactory_ids": list(lf_ids),
        "processor_ids": hf_ids,
        "llamafactory_text": tokenizer.decode(lf_ids),
        "processor_text": tokenizer.decode(hf_ids),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("template")
    parser.add_argument("--image-max-pixels", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARN")
    result = compare(args.model, args.template, args.image_max_pixels)
    print(json.dumps(result))
    if not result["same"]:
        print(
            f"image prompt drift: template {args.template} encodes an image conversation differently from "
            f"{args.model}'s processor and chat template; choose the template that matches the model",
            file=sys.stderr,
        )
        return EXIT_DIFF
    return EXIT_SAME


if __name__ == "__main__":
    raise SystemExit(main())
