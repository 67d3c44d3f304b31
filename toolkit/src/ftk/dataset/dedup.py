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
    """64 independent open-addressing tables picked by the top bits of the key.

    Each table doubles on its own when it is 2/3 full, so growing never holds a second copy of the whole index
    (a single table would briefly need 1.5x its size at every doubling).
    """

    SEGMENT_BITS = 6

    def __init__(self, capacity: int = 256) -> None:
        n = 1 << self.SEGMENT_BITS
        self.keys = [array("Q", bytes(8 * capacity)) for _ in range(n)]
        self.first = [array("I", bytes(4 * capacity)) for _ in range(n)]
        self.counts = [0] * n
        self.count = 0

    @property
    def nbytes(self) -> int:
        return sum(len(k) * 12 for k in self.keys)

    def add(self, key: int, sample_no: int) -> int | None:
        """Record `key` for sample `sample_no`; return the number of the earlier sample with the same key."""
        seg = key >> (64 - self.SEGMENT_BITS)
        keys = self.keys[seg]
        mask = len(keys) - 1
        slot = key & mask
        while True:
            k = keys[slot]
            if k == 0:
                break
            if k == key:
                return self.first[seg][slot]
            slot = (slot + 1) & mask
        keys[slot] = key
        self.first[seg][slot] = sample_no
        self.count += 1
        self.counts[seg] += 1
        if self.counts[seg] * 3 > len(keys) * 2:  # keep the load under 2/3
            self._grow(seg)
        return None

    def _grow(self, seg: int) -> None:
        old_keys, old_first = self.keys[seg], self.first[seg]
        capacity = len(old_keys) * 2
        keys, first = array("Q", bytes(8 * capacity)), array("I", bytes(4 * capacity))
        mask = capacity - 1
        for k, n in zip(old_keys, old_first, strict=True):
            if k:
                slot = k & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot] = k
                first[slot] = n
        self.keys[seg], self.first[seg] = keys, first
