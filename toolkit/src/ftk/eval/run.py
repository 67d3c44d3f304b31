"""One evaluation: every endpoint answers every held-out prompt (greedy), each answer is scored."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import openai

from ftk.console import UserError
from ftk.eval import metrics
from ftk.eval.client import Endpoint, answer, judge
from ftk.eval.gate import means
from ftk.eval.heldout import Item


@dataclass
class Scored:
    answers: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> answer per item
    scores: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # endpoint -> scores per item

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: means(rows) for name, rows in self.scores.items()}


def run(
    endpoints: list[Endpoint],
    items: list[Item],
    max_tokens: int,
    timeout: float,
    judge_endpoint: Endpoint | None = None,
    workers: int = 4,
) -> Scored:
    out = Scored()
    judge_client = judge_endpoint.client(timeout) if judge_endpoint else None
    for ep in endpoints:
        client = ep.client(timeout)
        try:
            with ThreadPoolExecutor(workers) as pool:
                texts = list(pool.map(lambda it, c=client, e=ep: answer(c, e, it, max_tokens), items))
        except openai.APIConnectionError as err:
            raise UserError(f"endpoint {ep.name} ({ep.base_url}): cannot connect ({err}); is it serving?") from None
        except openai.APIStatusError as err:
            raise UserError(
                f"endpoint {ep.name}: HTTP {err.status_code} for model '{ep.model}' at {ep.base_url} "
                f"({err.message}); check the model name (GET /v1/models) and the key"
            ) from None
        rows = [metrics.score(t, it.reference, it.expect) for t, it in zip(texts, items, strict=True)]
        if judge_client is not None and judge_endpoint is not None:
            for row, t, it in zip(rows, texts, items, strict=True):
                row["judge"] = judge(judge_client, judge_endpoint.model, it, t)
        out.answers[ep.name] = texts
        out.scores[ep.name] = rows
    return out
