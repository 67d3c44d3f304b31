"""The eval stage: score OpenAI-compatible endpoints side by side on a held-out set and gate a release on it.

Modules, one job each:
- `heldout`: read the held-out set (alpaca rows or preference pairs; `expect` phrases; `{{name}}` filled).
- `metrics`: exact match, contains, chrF (sacrebleu) of one answer.
- `client`: the OpenAI SDK client per endpoint, greedy answers, the optional judge model.
- `gate`: per-endpoint means, merge drift (merged vs adapter answers), regressions against the release.
- `report`: the rich table, the JSON report and the plot.
"""
