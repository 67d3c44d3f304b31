"""One problem in a data file, and a sink that counts every problem but keeps only the first few in memory."""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import asdict, dataclass

# Kinds, in the order the summary table shows them.
KINDS = {
    "file": "file-level problem (extension, encoding, empty file)",
    "json": "bad JSON",
    "column": "missing, misnamed or mistyped column",
    "role": "unknown or misnamed role tag / message key",
    "order": "roles out of order",
    "empty": "no turns to train on",
    "blank": "empty text (turn, answer, system prompt)",
    "tool": "function call or tool list LLaMA-Factory cannot parse",
    "stage": "data kind does not fit the training stage",
    "ending": "conversation does not end with the assistant",
    "placeholder": "<image>/<video> count differs from the media list",
    "media": "media path missing, unreadable, not an image, or outside the media root",
    "duplicate": "duplicate sample",
    "length": "longer than --cutoff-len tokens",
    "unchecked": "file type the validator does not read",
}
# Quality findings: LLaMA-Factory trains on these samples as they are, so they are warnings (--strict: errors).
WARNING_KINDS = frozenset({"blank", "duplicate", "length", "unchecked"})


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    sample: int  # 1-based; 0 for problems of the whole file
    field: str
    kind: str
    message: str  # what is wrong
    fix: str  # how to fix it
    severity: str = "error"  # or "warning": LLaMA-Factory trains on it (--strict makes it an error)

    def render(self) -> str:
        where = f"sample {self.sample}: " if self.sample else ""
        tail = " [warning]" if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {where}{self.field}: {self.message}; {self.fix}{tail}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class ProblemSink:
    """Counts problems by kind; keeps the first `keep` of them in file order (the output shows those, and how
    many more). Problems may arrive out of order (duplicates found at the end of a file): a bounded heap keeps
    the earliest, so memory stays at `keep` problems."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.by_kind: Counter[str] = Counter()
        self.total = 0
        self._files: dict[str, int] = {}
        self._heap: list[tuple[tuple[int, int, int, int], Problem]] = []  # negated order: the root is the latest

    def add(self, problem: Problem) -> None:
        self.total += 1
        self.by_kind[problem.kind] += 1
        if self.keep <= 0:
            return
        file_no = self._files.setdefault(problem.file, len(self._files))
        order = (-file_no, -problem.line, -problem.sample, -self.total)
        if len(self._heap) < self.keep:
            heapq.heappush(self._heap, (order, problem))
        elif order > self._heap[0][0]:
            heapq.heapreplace(self._heap, (order, problem))

    @property
    def kept(self) -> list[Problem]:
        """The kept problems in file order (file, line, sample, arrival)."""
        return [p for _, p in sorted(self._heap, reverse=True)]
