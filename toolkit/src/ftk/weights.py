"""Safetensors headers, read without torch: tensor names, dtypes and shapes, for every stage's checks."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

MAX_HEADER = 100_000_000  # the safetensors format's own limit


def safetensors_header(path: Path) -> dict[str, Any]:
    """Tensor name -> {dtype, shape, data_offsets}; ValueError naming the file when it is not a whole one."""
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is not a safetensors file ({len(raw)} bytes, shorter than its 8-byte header)")
        (size,) = struct.unpack("<Q", raw)
        if size > MAX_HEADER:
            raise ValueError(f"{path} is not a safetensors file (header size {size})")
        text = f.read(size)
    try:
        if len(text) != size:
            raise ValueError(f"{len(text)} of {size} header bytes")
        header = json.loads(text)
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError included
        raise ValueError(f"{path} is truncated or not a safetensors file ({err})") from None
    header.pop("__metadata__", None)
    return header
