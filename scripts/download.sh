#!/usr/bin/env bash
# Usage: scripts/download.sh [--model-id ID] [--revision REV] [--offline] [--help]
#
# Download stage: puts the base model where train and serve read it (BASE_MODEL_PATH), then verifies it
# (config.json, weights and shard index, tokenizer, chat template, processor files of vision-language models).
# The `download` compose service runs this script; tests run it natively.
#
# Every value comes from .env (or the environment, which wins); the flags override MODEL_ID / MODEL_REVISION:
#   MODEL_ID              ModelScope id (Org/Name), fetched with ModelScope's snapshot_download into
#                         MODELSCOPE_CACHE/models/<Org>/<Name>; or a local model folder, only verified
#   MODEL_REVISION        branch, tag or commit on ModelScope (default master)
#   MODELSCOPE_CACHE      the download cache (a volume in compose)
#   MODELSCOPE_ENDPOINT   ModelScope site; empty: https://modelscope.cn
#   DOWNLOAD_MAX_RETRIES, DOWNLOAD_TIMEOUT  retries per file, seconds per request
#   DOWNLOAD_MIN_FREE_MB  free space the cache's disk needs first
#
# Offline hosts: an unreachable hub fails in seconds. Pre-seed the cache by copying the model folder to
# MODELSCOPE_CACHE/models/<Org>/<Name> (it is then used without network), or set MODEL_ID to a local folder.
# Prints the model folder on stdout when it is complete; exits 1 with one line per problem otherwise.
set -Eeuo pipefail
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

main() {
	local args=()
	while (($# > 0)); do
		case "$1" in
		-h | --help)
			show_help "$0"
			return 0
			;;
		--model-id | --revision)
			(($# >= 2)) || die "$1 needs a value; see scripts/download.sh --help" 2
			args+=("$1" "$2")
			shift 2
			;;
		--offline)
			args+=("$1")
			shift
			;;
		*) die "unknown argument '$1'; see scripts/download.sh --help" 2 ;;
		esac
	done
	load_env
	local ftk exports cache
	ftk="$(venv_tool toolkit ftk)"
	exports="$("$ftk" env export)" || die "invalid settings; run: ftk env check"
	eval "$exports"

	cache="$(ftk_path "$MODELSCOPE_CACHE")"
	step "download: preflight"
	info "MODEL_ID=$MODEL_ID MODEL_REVISION=$MODEL_REVISION MODELSCOPE_CACHE=$cache"
	check_writable "$cache" || exit 1
	check_disk "$cache" "$DOWNLOAD_MIN_FREE_MB" || exit 1

	step "download: fetch and verify"
	"$ftk" download "${args[@]}"
}

main "$@"
