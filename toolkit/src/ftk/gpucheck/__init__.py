"""`scripts/gpu-check.sh` / `ftk gpu-check`: train, merge, serve and benchmark on a GPU host, ending in a report.

report.py: the report (steps, checks, side-by-side figures) as a table and as JSON; host.py: GPU, driver,
versions, memory bandwidth and peak GPU memory; random_text.py: a random-weight text model built from a config;
vllm_bench.py: `vllm bench serve` and vLLM's own KV-cache figure; runner.py: the phases.
"""
