"""The multimodal shapes set: one image per colour and shape, drawn with Pillow, with checkable questions.

Deterministic: the same images (byte for byte, for a given Pillow) and the same samples on every run; files
are only rewritten when their content changes. Images go to MEDIA_ROOT/generated/shapes/ (git-ignored); the
samples (sharegpt, OpenAI-style `messages`) reference them relative to the media root.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

from ftk.files import atomic_path

SIZE = 112  # small images: few vision tokens for a CPU run
IMAGE_DIR = "generated/shapes"
COLOURS = {
    "red": (220, 32, 32),
    "green": (32, 160, 64),
    "blue": (32, 80, 224),
    "yellow": (240, 200, 16),
    "purple": (128, 48, 176),
    "orange": (248, 128, 16),
}
SHAPES = ("circle", "square", "triangle", "star")
QUESTIONS = (
    ("What colour is the shape?", "{colour}"),
    ("What shape is this?", "{shape}"),
    ("Describe the image in a few words.", "A {colour} {shape} on a white background."),
)


def _points(shape: str) -> list[tuple[float, float]]:
    c, r = SIZE / 2, SIZE * 0.36
    if shape == "triangle":
        angles, radii = [-90, 30, 150], [r, r, r]
    elif shape == "star":
        angles = [-90 + 36 * i for i in range(10)]
        radii = [r if i % 2 == 0 else r * 0.45 for i in range(10)]
    else:
        raise ValueError(shape)
    return [
        (c + rad * math.cos(math.radians(a)), c + rad * math.sin(math.radians(a)))
        for a, rad in zip(angles, radii, strict=True)
    ]


def draw(colour: str, shape: str) -> bytes:
    """The PNG bytes of one shape."""
    from PIL import Image, ImageDraw  # Pillow only when images are drawn

    im = Image.new("RGB", (SIZE, SIZE), "white")
    pen = ImageDraw.Draw(im)
    fill = COLOURS[colour]
    lo, hi = SIZE * 0.16, SIZE * 0.84
    if shape == "circle":
        pen.ellipse((lo, lo, hi, hi), fill=fill)
    elif shape == "square":
        pen.rectangle((lo + 6, lo + 6, hi - 6, hi - 6), fill=fill)
    else:
        pen.polygon(_points(shape), fill=fill)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def image_name(colour: str, shape: str) -> str:
    return f"{IMAGE_DIR}/{colour}_{shape}.png"


def samples() -> list[dict[str, Any]]:
    out = []
    for shape in SHAPES:
        for colour in COLOURS:
            for question, answer in QUESTIONS:
                out.append(
                    {
                        "messages": [
                            {"role": "user", "content": f"<image>{question}"},
                            {"role": "assistant", "content": answer.format(colour=colour, shape=shape)},
                        ],
                        "images": [image_name(colour, shape)],
                    }
                )
    return out


def samples_jsonl() -> str:
    return "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples())


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_path(path, mode=0o644) as tmp:
        tmp.write_bytes(data)
    return True


def make_shapes(media_root: Path, jsonl: Path | None = None) -> tuple[int, int]:
    """Write the images under `media_root` (and the samples to `jsonl`); (files written, files total)."""
    written = total = 0
    for shape in SHAPES:
        for colour in COLOURS:
            total += 1
            written += _write_if_changed(media_root / image_name(colour, shape), draw(colour, shape))
    if jsonl is not None:
        total += 1
        written += _write_if_changed(jsonl, samples_jsonl().encode("utf-8"))
    return written, total
