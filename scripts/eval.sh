#!/usr/bin/env bash
# Usage: scripts/eval.sh [ftk eval options...] [--help]
#
# Eval stage: scores OpenAI-compatible endpoints side by side on a held-out set (base, adapter, merged, the
# current release; through the gateway or vLLM directly), with `ftk eval`: exact match, contains, chrF (and an
# optional judge model), a table, runs/eval/report.json and runs/eval/scores.png. Exits 1 when the merged
# model's answers drift from its adapter's, or the candidate regresses against the release beyond the
# threshold: a release promote runs this as its gate. The `eval` compose service runs this script.
#
# Every value comes from .env (or the environment, which wins); flags of `ftk eval` override them:
#   EVAL_SET              held-out samples (default data/eval_heldout.json)
#   EVAL_ENDPOINTS        NAME=MODEL[@URL] list (default: base=SERVED_MODEL_NAME and each LORA_MODULES name)
#   EVAL_BASE_URL, EVAL_API_KEY_FILE, TLS_CA   where and how to reach endpoints given without a URL
#   EVAL_RELEASE, EVAL_CANDIDATE, EVAL_GATE_METRICS, EVAL_MAX_REGRESSION   the regression gate
#   EVAL_DRIFT, EVAL_MAX_DRIFT   MERGED:ADAPTER pairs whose answers must agree
#   EVAL_JUDGE, EVAL_MAX_LENGTH, EVAL_REPORT_DIR
#
# Example: scripts/eval.sh -e base=base -e adapter=identity -e merged=merged@http://127.0.0.1:8001/v1 \
#            --drift merged:adapter --release base --candidate merged
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
	case "${1:-}" in -h | --help)
		show_help "$0"
		return 0
		;;
	esac
	load_env
	local ftk
	ftk="$(venv_tool toolkit ftk)"
	exec "$ftk" eval "$@"
}

main "$@"
