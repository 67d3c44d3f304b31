"""Scores of one answer against its reference, each in [0, 1].

- `exact`: equal after normalising case, whitespace and final punctuation;
- `contains`: the expected phrase (default the reference) occurs in the answer, normalised the same way;
- `chrf`: character n-gram F-score (chrF, sacrebleu's implementation), robust to small wording changes;
- `judge`: a judge model's 0-10 grade / 10 (optional; see `ftk.eval.client`).
"""

from __future__ import annotations

import re

from sacrebleu.metrics import CHRF

METRICS = ("exact", "contains", "chrf")
_CHRF = CHRF()


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".!?")


def score(answer: str, reference: str, expect: str) -> dict[str, float]:
    return {
        "exact": float(normalise(answer) == normalise(reference)),
        "contains": float(normalise(expect) in normalise(answer)),
        "chrf": _CHRF.sentence_score(answer, [reference]).score / 100.0,
    }
