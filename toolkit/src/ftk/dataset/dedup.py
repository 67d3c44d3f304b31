"""Duplicate samples by hash, exact, in memory that does not grow with the file.

`DuplicateIndex`: an open-addressing table of 64-bit fingerprints (blake2b of the sample's canonical JSON) next
to the 1-based number of the sample that first had it, 12 bytes per sample. `SpillingDuplicateIndex` keeps one
such table up to a fixed number of samples; later fingerprints not found there go to partition files on disk,
which are resolved one at a time at the end of the file, so memory stays flat however long the file is. A 64-bit
fingerprint makes a false duplicate among a million samples a one-in-ten-million event.
"""

from __future__ import annotations

import json
import struct
import tempfile
from array import array
from collections.abc import Iterator
from contextlib import ExitStack
from hashlib import blake2b
from pathlib import Path
from typing import IO, Any

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

    def _slot(self, key: int) -> tuple[int, int, bool]:
        """(segment, slot, found): where `key` is, or the empty slot where it would go."""
        seg = key >> (64 - self.SEGMENT_BITS)
        keys = self.keys[seg]
        mask = len(keys) - 1
        slot = key & mask
        while True:
            k = keys[slot]
            if k == 0 or k == key:
                return seg, slot, k == key
            slot = (slot + 1) & mask

    def find(self, key: int) -> int | None:
        """The number of the sample that first had `key`, if any."""
        seg, slot, found = self._slot(key)
        return self.first[seg][slot] if found else None

    def add(self, key: int, sample_no: int) -> int | None:
        """Record `key` for sample `sample_no`; return the number of the earlier sample with the same key."""
        seg, slot, found = self._slot(key)
        if found:
            return self.first[seg][slot]
        keys = self.keys[seg]
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


class SpillingDuplicateIndex:
    """Exact duplicates in bounded memory: a `DuplicateIndex` for the first `memory_samples` distinct samples,
    then partition files (by fingerprint bits) for the rest, resolved at the end by `spilled_duplicates`.

    A duplicate of a sample held in memory is reported at once by `add`; a duplicate among the spilled samples
    comes out of `spilled_duplicates` as (line, sample, first sample). Use it as a context manager: the
    partition files live in a temporary folder (under TMPDIR) that is removed on exit, errors included.
    """

    RECORD = struct.Struct("<QII")  # fingerprint, sample number, line
    PARTITION_BITS = 7
    RESOLVE_SAMPLES = 1 << 15  # most records one partition is resolved with in memory

    def __init__(self, memory_samples: int = 1 << 16) -> None:
        self.memory = DuplicateIndex()
        self.memory_samples = memory_samples
        self.spilled = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._parts: list[IO[bytes]] = []

    def __enter__(self) -> SpillingDuplicateIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def nbytes(self) -> int:
        return self.memory.nbytes

    def add(self, key: int, sample_no: int, line: int) -> int | None:
        if self.memory.count < self.memory_samples:
            return self.memory.add(key, sample_no)
        earlier = self.memory.find(key)
        if earlier is not None:
            return earlier
        self._partition(key).write(self.RECORD.pack(key, sample_no, line))
        self.spilled += 1
        return None

    def _partition(self, key: int) -> IO[bytes]:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ftk-dedup-")
            folder = Path(self._tmp.name)
            count = 1 << self.PARTITION_BITS
            self._parts = [(folder / f"{i:03d}.bin").open("w+b", buffering=4096) for i in range(count)]
        return self._parts[key >> (64 - self.PARTITION_BITS)]

    def spilled_duplicates(self) -> Iterator[tuple[int, int, int]]:
        """(line, sample, first sample) of every duplicate among the spilled samples, one partition at a time."""
        for part in self._parts:
            part.flush()
            yield from self._resolve(part, self.PARTITION_BITS)

    def _records(self, part: IO[bytes]) -> Iterator[tuple[int, int, int]]:
        part.seek(0)
        while chunk := part.read(self.RECORD.size * 4096):
            yield from self.RECORD.iter_unpack(chunk)

    def _resolve(self, part: IO[bytes], bits: int) -> Iterator[tuple[int, int, int]]:
        """Duplicates within one partition; a partition too big for memory is split by the next key bits first,
        so memory stays at RESOLVE_SAMPLES entries however many samples were spilled."""
        part.seek(0, 2)
        count = part.tell() // self.RECORD.size
        if count <= self.RESOLVE_SAMPLES or bits + self.PARTITION_BITS > 64:
            first: dict[int, int] = {}
            for key, sample_no, line in self._records(part):
                earlier = first.setdefault(key, sample_no)
                if earlier != sample_no:
                    yield line, sample_no, earlier
            return
        shift = 64 - bits - self.PARTITION_BITS
        mask = (1 << self.PARTITION_BITS) - 1
        folder = self._tmp.name if self._tmp else None
        with ExitStack() as stack:
            subs = [stack.enter_context(tempfile.TemporaryFile(dir=folder, buffering=4096)) for _ in range(mask + 1)]
            for key, sample_no, line in self._records(part):  # file order is kept inside each sub-partition
                subs[(key >> shift) & mask].write(self.RECORD.pack(key, sample_no, line))
            for sub in subs:
                sub.flush()
                yield from self._resolve(sub, bits + self.PARTITION_BITS)

    def close(self) -> None:
        for part in self._parts:
            part.close()
        self._parts = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
