"""Summaries, merge drift and the release gate: what `ftk eval` exits non-zero on.

- Merge drift: the share of held-out prompts whose merged-model answer differs from the adapter's (normalised).
  Merging is exact in float32 (`ftk merge verify`), so drift above `max_drift` means the merged model is not
  the adapter any more (bf16/QLoRA rounding, a wrong template in the export, ...).
- Regression: for each gated metric, the release's mean minus the candidate's; above `max_regression` the
  candidate is worse than what runs today and must not be promoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ftk.eval.metrics import normalise


@dataclass
class Finding:
    kind: str  # regression | drift
    subject: str
    value: float
    limit: float
    detail: str

    def render(self) -> str:
        return f"{self.kind}: {self.subject}: {self.detail} ({self.value:.3f} > {self.limit:.3f})"


@dataclass
class GateResult:
    findings: list[Finding] = field(default_factory=list)
    drift: dict[str, float] = field(default_factory=dict)  # "merged vs adapter" -> share of answers that differ
    regressions: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> release - candidate

    @property
    def passed(self) -> bool:
        return not self.findings


def means(scores: list[dict[str, float]]) -> dict[str, float]:
    keys = scores[0].keys() if scores else ()
    return {k: sum(s[k] for s in scores) / len(scores) for k in keys}


def drift(merged: list[str], adapter: list[str]) -> float:
    differ = sum(normalise(a) != normalise(b) for a, b in zip(merged, adapter, strict=True))
    return differ / len(merged) if merged else 0.0


def evaluate(
    summary: dict[str, dict[str, float]],
    answers: dict[str, list[str]],
    candidate: str | None,
    release: str | None,
    metrics: list[str],
    max_regression: float,
    drift_pairs: list[tuple[str, str]],
    max_drift: float,
) -> GateResult:
    result = GateResult()
    for merged, adapter in drift_pairs:
        share = drift(answers[merged], answers[adapter])
        key = f"{merged} vs {adapter}"
        result.drift[key] = share
        if share > max_drift:
            result.findings.append(
                Finding("drift", key, share, max_drift, f"{share:.0%} of the answers of {merged} differ from {adapter}")
            )
    if candidate and release:
        for metric in metrics:
            drop = summary[release][metric] - summary[candidate][metric]
            result.regressions[metric] = drop
            if drop > max_regression:
                result.findings.append(
                    Finding(
                        "regression",
                        f"{candidate} vs release {release}",
                        drop,
                        max_regression,
                        f"{metric} {summary[candidate][metric]:.3f} against {summary[release][metric]:.3f}",
                    )
                )
    return result
