"""The chat template of the tiny Qwen-VL models, written for this project.

It renders what LLaMA-Factory's `qwen3_vl_nothink` / `qwen2_vl` templates render for a conversation:
ChatML turns (`<|im_start|>role\\n...<|im_end|>\\n`), each image as
`<|vision_start|><|image_pad|><|vision_end|>` and each video as `<|vision_start|><|video_pad|><|vision_end|>`
at its place in the message, no `<think>` block (the Instruct models do not reason). The processor
expands each pad token to the image's number of patches.

`default_system` is the system prompt injected when the conversation has none: empty for Qwen3-VL-Instruct
(LLaMA-Factory's `qwen3_vl_nothink` has none either), "You are a helpful assistant." for Qwen2-VL-Instruct
(as LLaMA-Factory's `qwen2_vl`).
"""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
VIDEO_PLACEHOLDER = "<|vision_start|><|video_pad|><|vision_end|>"

_TEMPLATE = """\
{%- set default_system = '@DEFAULT_SYSTEM@' -%}
{%- if messages and messages[0]['role'] != 'system' and default_system -%}
{{- '<|im_start|>system\\n' + default_system + '<|im_end|>\\n' -}}
{%- endif -%}
{%- for message in messages -%}
{{- '<|im_start|>' + message['role'] + '\\n' -}}
{%- if message['content'] is string -%}
{{- message['content'] -}}
{%- else -%}
{%- for part in message['content'] -%}
{%- set kind = part.get('type', '') -%}
{%- if kind in ('image', 'image_url') or 'image' in part or 'image_url' in part -%}
{{- '@IMAGE@' -}}
{%- elif kind in ('video', 'video_url') or 'video' in part or 'video_url' in part -%}
{{- '@VIDEO@' -}}
{%- elif 'text' in part -%}
{{- part['text'] -}}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{{- '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
{{- '<|im_start|>assistant\\n' -}}
{%- endif -%}
"""


def chat_template(default_system: str = "") -> str:
    """The Jinja chat template, with `default_system` used when a conversation has no system message."""
    if "'" in default_system or "\\" in default_system:
        raise ValueError("default_system must not contain quotes or backslashes")
    return (
        _TEMPLATE.replace("@DEFAULT_SYSTEM@", default_system)
        .replace("@IMAGE@", IMAGE_PLACEHOLDER)
        .replace("@VIDEO@", VIDEO_PLACEHOLDER)
    )
