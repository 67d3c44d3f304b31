"""Serve stage: vLLM's OpenAI-compatible server for merged models and base+LoRA adapters.

Modules: ``adapters`` (LoRA adapter checks against the served model), ``preflight`` (every check before vLLM
starts), ``command`` (the vLLM command line from settings), ``client`` (health, models, runtime LoRA
endpoints), ``plan`` (GPU memory planning), ``served`` (a server started through scripts/serve.sh on a free
port, for gpu-check and the benchmarks), ``vllm_launcher`` (stdlib-only launcher run by the serve venv's
python). What a model folder holds is ``ftk.hf``'s.
"""
