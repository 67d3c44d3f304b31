"""Safetensors headers, read without torch: tensor names, dtypes and shapes, and whether a file is whole."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MAX_HEADER = 100_000_000  # the safetensors format's own limit
WEIGHT_SUFFIXES = (".weight", ".bias")

# Bytes per element of the safetensors / torch dtypes we meet.
DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "float32": 4,
    "float": 4,
    "float16": 2,
    "half": 2,
    "bfloat16": 2,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
}


def _read_header(f: BinaryIO, path: Path) -> tuple[int, dict[str, Any]]:
    """(header length, header) of an open file; ValueError naming the file when it is not a whole header."""
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
    return size, header


def safetensors_header(path: Path) -> dict[str, Any]:
    """Tensor name -> {dtype, shape, data_offsets}; ValueError naming the file when it is not a whole one."""
    with path.open("rb") as f:
        return _read_header(f, path)[1]


def safetensors_problem(path: Path) -> str:
    """Why a .safetensors file is not whole (truncated, wrong file), or '' when its header adds up."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            n, header = _read_header(f, path)
    except OSError as err:
        return f"{path.name}: unreadable ({err})"
    except ValueError as err:
        return str(err)
    try:
        end = max((int(meta["data_offsets"][1]) for meta in header.values()), default=0)
    except (KeyError, IndexError, TypeError, ValueError):
        return f"{path.name}: a tensor of its header has no data_offsets (damaged file)"
    if size != 8 + n + end:
        return f"{path.name} is {size} bytes, its header says {8 + n + end} (truncated or damaged)"
    return ""


@dataclass
class TensorInfo:
    dtype: str
    shape: list[int]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def read_tensors(folder: Path) -> dict[str, TensorInfo]:
    """Every tensor in the folder's *.safetensors files (sharded or not), from their headers."""
    tensors: dict[str, TensorInfo] = {}
    for file in sorted(folder.glob("*.safetensors")):
        for name, meta in safetensors_header(file).items():
            tensors[name] = TensorInfo(str(meta.get("dtype", "")), list(meta.get("shape", [])))
    return tensors


def module_of(tensor_name: str) -> str:
    """`model.layers.0.mlp.up_proj.weight` -> `model.layers.0.mlp.up_proj`."""
    for suffix in WEIGHT_SUFFIXES:
        if tensor_name.endswith(suffix):
            return tensor_name[: -len(suffix)]
    return tensor_name
