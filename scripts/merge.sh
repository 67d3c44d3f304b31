#!/usr/bin/env bash
# Usage: scripts/merge.sh [--run-id ID] [--adapter DIR] [--output DIR] [--recipe FILE] [--set key=value]...
#
# Merges a LoRA adapter into its base model with `llamafactory-cli export` (the `merge` compose service runs
# this), makes the result servable, verifies it, and only then puts it in place. Values from .env/environment:
#   MODEL_ID           the base model (BASE_MODEL_PATH)
#   RUN_ID             runs/<RUN_ID>/ gets merge.yaml (the exact export config) and merge.log
#   ADAPTER_PATH       the adapter (empty: runs/<RUN_ID>/adapter)
#   MERGED_MODEL_PATH  where the merged model goes (empty: models/merged/<RUN_ID>)
#   MERGE_RECIPE EXPORT_SIZE EXPORT_DEVICE   recipe in configs/merge/, shard size (GB), cpu or auto
#
# Steps: the adapter's base must be this base (path, else config and LoRA shapes: a moved copy passes, another
# model fails); export into a hidden folder next to the target (.NAME.partial); copy processor/preprocessor
# configs, chat template and generation config from the base when missing and fix tokenizer_config.json and
# config.json for transformers 4.x; `ftk merge verify` (greedy output of merged == base + adapter); then the
# old export becomes NAME.prev and the new one NAME. An interrupted or failed merge leaves NAME untouched.
#
# Options:
#   --run-id ID      instead of RUN_ID          --adapter DIR   instead of ADAPTER_PATH
#   --output DIR     instead of MERGED_MODEL_PATH   --recipe FILE   instead of MERGE_RECIPE
#   --set key=value  override a LLaMA-Factory key of the export config (repeatable)
#   --prompts N      prompts `ftk merge verify` compares (default 3)
set -Eeuo pipefail
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

RENDER_ARGS=()
PROMPTS=3

parse_args() {
	while (($#)); do
		case "$1" in
		-h | --help)
			show_help "$0"
			exit 0
			;;
		--run-id | --adapter | --output | --recipe | --set | --prompts)
			[[ $# -ge 2 ]] || die "$1 needs a value" 2
			case "$1" in
			--run-id) export RUN_ID="$2" ;;
			--adapter) export ADAPTER_PATH="$2" ;;
			--output) export MERGED_MODEL_PATH="$2" ;;
			--recipe) export MERGE_RECIPE="$2" ;;
			--set) RENDER_ARGS+=(--set "$2") ;;
			--prompts) PROMPTS="$2" ;;
			esac
			shift 2
			;;
		*) die "unknown option '$1'; see scripts/merge.sh --help" 2 ;;
		esac
	done
}

# recover_swap TARGET PREV: a merge killed between its two renames left only PREV; put it back.
recover_swap() {
	local target="$1" prev="$2"
	if [[ ! -e "$target" && -d "$prev" ]]; then
		mv "$prev" "$target"
		warn "an earlier merge was interrupted while swapping folders; restored $target from $prev"
	fi
}

main() {
	parse_args "$@"
	local ftk train_ftk lf base adapter target partial prev config need dtype settings
	ftk="$(venv_tool toolkit ftk)"
	train_ftk="$(venv_tool train ftk)"
	lf="$(venv_tool train llamafactory-cli)"
	settings="$("$ftk" env export)" || die "settings are invalid (above); fix them, ftk env check lists every problem"
	eval "$settings"
	base="$BASE_MODEL_PATH"
	adapter="$RESOLVED_ADAPTER_PATH"
	target="$RESOLVED_MERGED_PATH"
	partial="$(dirname "$target")/.$(basename "$target").partial"
	prev="$target.prev"

	step "merge: adapter $adapter into base $base -> $target (export in $partial, verified before it replaces $target)"
	recover_swap "$target" "$prev"
	check_model_dir "$base" || exit 1
	[[ -f "$adapter/adapter_config.json" ]] ||
		die "$adapter/adapter_config.json not found: no adapter there; train one (scripts/train.sh) or set ADAPTER_PATH"
	"$ftk" merge check-base --adapter "$adapter" --base "$base" || exit 1
	need=$(($(du -sm "$base" | cut -f1) * 2 + 64))
	check_writable "$(dirname "$target")" || exit 1
	check_disk "$(dirname "$target")" "$need" || exit 1
	config="$("$ftk" config render merge "${RENDER_ARGS[@]}")" || exit 1

	rm -rf "$partial"
	step "export: llamafactory-cli export $config; log $RUN_DIR/merge.log"
	run_logged "$RUN_DIR/merge.log" "$lf" export "$config" ||
		die "export failed (log: $RUN_DIR/merge.log); ${target} is untouched"
	[[ -f "$partial/config.json" ]] || die "export wrote no $partial/config.json (log: $RUN_DIR/merge.log); $target is untouched"

	step "making $partial servable (files from the base, tokenizer/config fixes)"
	"$train_ftk" merge finish "$partial" --base "$base" || die "could not finish $partial; $target is untouched"
	dtype="$("$(venv_tool train python)" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c.get("torch_dtype") or c.get("dtype") or "float32")' "$partial/config.json")"
	step "verify: greedy output of the export vs base + adapter ($PROMPTS prompts, $dtype)"
	"$train_ftk" merge verify "$partial" --base "$base" --adapter "$adapter" --prompts "$PROMPTS" --dtype "$dtype" ||
		die "verification failed; the new export stays in $partial for inspection and $target is untouched"

	if [[ -e "$target" ]]; then
		rm -rf "$prev"
		mv "$target" "$prev"
		info "previous export kept as $prev"
	fi
	mv "$partial" "$target"
	ok "merged model ready: $target (export config $config)"
}

main "$@"
