#!/usr/bin/env bash
# Usage: scripts/gpu-check.sh [--phase all|train,serve,variants] [--work DIR] [--report FILE] [--size 1b|small]
#                             [--steps N] [--concurrency 1,16,64] [--deadline-s S] [--no-vl] [--fresh]
#                             [--skip WORD,...] [--train-repeats N]
#
# Checks a GPU host end to end with the project's own stages, before a long job: builds a random-weight model
# from a config (no hub), trains a few steps through scripts/train.sh (bf16 LoRA with SDPA, against a plain
# `llamafactory-cli train` of the same config; 4-bit QLoRA; the Qwen3-VL recipe on a tiny random Qwen3-VL),
# merges through scripts/merge.sh (`ftk merge verify` on the GPU), serves the merged model and the base with
# 4 LoRA adapters through scripts/serve.sh, runs `ftk smoke` and `vllm bench serve`, and compares fp8 KV cache,
# --enforce-eager and MAX_NUM_SEQS variants. Ends with tables and a JSON report (GPU, driver, CUDA, versions,
# every figure). Runs natively (the venvs of make setup) or in the images (tools on PATH). ALLOW_CPU is false.
#
# Phases (each adds to the same report, so they can run one at a time):
#   train     data sets, the random model, training runs, merges
#   serve     merged vs LoRA throughput and TTFT, batch-1 decode vs bandwidth, planner KV check (fails beyond 5%)
#   variants  KV_CACHE_DTYPE=fp8 vs auto, --enforce-eager vs CUDA graphs, MAX_NUM_SEQS 32 vs 256, MAX_LORAS 1 vs 4
#
# Options:
#   --phase LIST       all (default) or a comma-separated list of the phases above
#   --work DIR         work folder: models, runs, logs, report (default runs/gpu-check)
#   --report FILE      the JSON report (default WORK/report.json); a later phase adds to it
#   --size SIZE        the random text model: 1b (1.17B parameters, default) or small (21M, a quick look)
#   --steps N          optimizer steps per training run (default 20)
#   --concurrency L    concurrent requests of each benchmark (default 1,16,64)
#   --deadline-s S     start no step after S seconds, so a time-boxed run still writes its report (default none)
#   --no-vl            leave out the Qwen3-VL recipe
#   --fresh            start a new report instead of adding to the one in WORK
#   --skip WORDS       leave out the steps whose name contains one of these comma-separated words (e.g. QLoRA)
#   --train-repeats N  alternate the plain and the scripts/train.sh run N times; the table shows medians (default 1)
# Exit status: 0 when every step and check passed, 1 otherwise (the report names each failure), 2 bad usage.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ARGS=()
WORK="runs/gpu-check"

parse_args() {
	while (($#)); do
		case "$1" in
		-h | --help)
			show_help "$0"
			exit 0
			;;
		--phase | --work | --report | --size | --steps | --concurrency | --deadline-s | --skip | --train-repeats)
			[[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value; see scripts/gpu-check.sh --help" 2
			[[ "$1" == --work ]] && WORK="$2"
			ARGS+=("$1" "$2")
			shift 2
			;;
		--no-vl | --fresh)
			ARGS+=("$1")
			shift
			;;
		*) die "unknown option '$1'; see scripts/gpu-check.sh --help" 2 ;;
		esac
	done
}

main() {
	parse_args "$@"
	export ALLOW_CPU=false
	local ftk
	ftk="$(venv_tool toolkit ftk)"
	venv_tool train llamafactory-cli >/dev/null
	step "gpu-check: train, merge, serve and benchmark through the project's scripts; work folder $WORK"
	info "running: $ftk gpu-check run ${ARGS[*]}"
	"$ftk" gpu-check run "${ARGS[@]}"
}

main "$@"
