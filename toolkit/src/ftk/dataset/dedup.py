"""Duplicate samples by hash, in 12 bytes per sample (a Python set of ints would take ~60).

An open-addressing table of 64-bit fingerprints (blake2b of the sample's canonical JSON) next to the 1-based
number of the sample that first had it. A million samples take 24 MiB; a 64-bit fingerprint makes a false
duplicate among a million samples a one-in-ten-million event.
"""

from __future__ import annotations

import json
from array import array
from hashlib import blake2b
from typing import Any

_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def fingerprint(sample: Any) -> int:
    digest = blake2b(_dumps(sample).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1  # 0 marks an empty slot


class DuplicateIndex:
    def __init__(self, capacity: int = 1 << 14) -> None:
        self._alloc(capacity)
        self.count = 0

    def _alloc(self, capacity: int) -> None:
        self.mask = capacity - 1
        self.keys = array("Q", bytes(8 * capacity))
        self.first = array("I", bytes(4 * capacity))

    @property
    def nbytes(self) -> int:
        return self.keys.itemsize * len(self.keys) + self.first.itemsize * len(self.first)

    def add(self, key: int, sample_no: int) -> int | None:
        """Record `key` for sample `sample_no`; return the number of the earlier sample with the same key."""
        keys, mask = self.keys, self.mask
        slot = key & mask
        while True:
            k = keys[slot]
            if k == 0:
                break
            if k == key:
                return self.first[slot]
            slot = (slot + 1) & mask
        keys[slot] = key
        self.first[slot] = sample_no
        self.count += 1
        if self.count * 3 > len(keys) * 2:  # keep the load under 2/3
            self._grow()
        return None

    def _grow(self) -> None:
        old_keys, old_first = self.keys, self.first
        self._alloc(len(old_keys) * 2)
        keys, first, mask = self.keys, self.first, self.mask
        for k, n in zip(old_keys, old_first, strict=True):
            if k:
                slot = k & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = k
                first[slot] = n
