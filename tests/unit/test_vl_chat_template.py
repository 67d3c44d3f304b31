"""The tiny Qwen-VL chat template renders what LLaMA-Factory's qwen3_vl_nothink / qwen2_vl templates render."""

from __future__ import annotations

from ftk.vl.chat_template import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, chat_template
from jinja2.sandbox import ImmutableSandboxedEnvironment


def render(template: str, messages: list[dict], generation: bool = True) -> str:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=generation)


IMAGE_QUESTION = {
    "role": "user",
    "content": [{"type": "image"}, {"type": "text", "text": "What shape is this?"}],
}


def test_qwen3_vl_instruct_has_no_default_system_and_no_think_block() -> None:
    text = render(chat_template(""), [IMAGE_QUESTION])
    assert text == (f"<|im_start|>user\n{IMAGE_PLACEHOLDER}What shape is this?<|im_end|>\n<|im_start|>assistant\n")
    assert "<think>" not in text


def test_media_parts_render_in_order_and_openai_image_url_parts_count() -> None:
    parts = [
        {"type": "text", "text": "Compare "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": " and "},
        {"type": "video", "video": "clip.mp4"},
    ]
    text = render(chat_template(""), [{"role": "user", "content": parts}], generation=False)
    assert text == f"<|im_start|>user\nCompare {IMAGE_PLACEHOLDER} and {VIDEO_PLACEHOLDER}<|im_end|>\n"


def test_a_conversation_with_system_and_answers() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        IMAGE_QUESTION,
        {"role": "assistant", "content": "circle"},
    ]
    text = render(chat_template("You are a helpful assistant."), messages, generation=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        f"<|im_start|>user\n{IMAGE_PLACEHOLDER}What shape is this?<|im_end|>\n"
        "<|im_start|>assistant\ncircle<|im_end|>\n"
    )


def test_qwen2_vl_injects_its_default_system_prompt() -> None:
    text = render(
        chat_template("You are a helpful assistant."),
        [{"role": "user", "content": "Hi"}],
    )
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi")
