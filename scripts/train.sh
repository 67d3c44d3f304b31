#!/usr/bin/env bash
# Usage: scripts/train.sh [--recipe FILE] [--run-id ID] [--set key=value]... [--overwrite] [--preflight-only]
#
# LoRA / QLoRA SFT with LLaMA-Factory (the `train` compose service runs this). Preflight first, then
# `llamafactory-cli train`, then a manifest. Every value comes from .env (or the environment, which wins):
#   TRAIN_RECIPE      recipe in configs/train/ (placeholders filled by `ftk config render train`)
#   RUN_ID            runs/<RUN_ID>/ gets train.yaml (the exact config), train.log, adapter/, manifest.json
#   MODEL_ID DATASETS DATASET_DIR TEMPLATE LORA_RANK LORA_ALPHA LORA_TARGET NUM_TRAIN_EPOCHS LEARNING_RATE
#   CUTOFF_LEN IMAGE_MAX_PIXELS VIDEO_MAX_PIXELS QUANTIZATION_BIT ...   empty = the recipe's value
#   TRAIN_GPUS, ALLOW_CPU   GPUs needed (ALLOW_CPU=true skips the GPU check on CPU hosts)
#   FORCE_TORCHRUN NNODES NODE_RANK MASTER_ADDR MASTER_PORT   multi-GPU / multi-node, passed to LLaMA-Factory
#   TRAIN_MIN_FREE_MB  free disk needed under RUNS_DIR
#
# Preflight: base model folder complete; every data set registered and valid (ftk dataset validate); template
# fits the model (vision-language vs text); LLaMA-Factory's template renders the same prompt as the model's
# chat template (a warning with a diff when not); GPUs; disk; the run folder: a completed adapter is never
# overwritten (use a new RUN_ID or --overwrite, which keeps the old one as adapter.prev), an interrupted run
# resumes from its last checkpoint.
#
# Options:
#   --recipe FILE      a recipe instead of TRAIN_RECIPE
#   --run-id ID        a run id instead of RUN_ID
#   --set key=value    override a LLaMA-Factory key of the rendered config (repeatable)
#   --overwrite        replace a completed adapter of the same run id
#   --preflight-only   run the checks, write runs/<RUN_ID>/train.yaml, do not train
set -Eeuo pipefail
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

PREFLIGHT_ARGS=()
PREFLIGHT_ONLY=0

parse_args() {
	while (($#)); do
		case "$1" in
		-h | --help)
			show_help "$0"
			exit 0
			;;
		--recipe)
			[[ $# -ge 2 ]] || die "--recipe needs a file" 2
			export TRAIN_RECIPE="$2"
			shift 2
			;;
		--run-id)
			[[ $# -ge 2 ]] || die "--run-id needs an id" 2
			export RUN_ID="$2"
			shift 2
			;;
		--set)
			[[ $# -ge 2 ]] || die "--set needs key=value" 2
			PREFLIGHT_ARGS+=(--set "$2")
			shift 2
			;;
		--overwrite)
			PREFLIGHT_ARGS+=(--overwrite)
			shift
			;;
		--preflight-only)
			PREFLIGHT_ONLY=1
			shift
			;;
		*) die "unknown option '$1'; see scripts/train.sh --help" 2 ;;
		esac
	done
}

# truthy VALUE: true/1/yes/on, as the settings read booleans.
truthy() {
	[[ "${1,,}" =~ ^(1|true|yes|on)$ ]]
}

# check_template_drift CONFIG: warn (with a diff) when LLaMA-Factory's template and the model's chat template
# render different prompts; training goes on, since some models are meant to be served with the trained one.
check_template_drift() {
	local config="$1" rc=0
	"$TRAIN_PY" -m ftk.train.template_drift "$config" || rc=$?
	case "$rc" in
	0) ;;
	3) warn "template drift (above): the served model's chat template differs from what it is trained on; fix the recipe's template/default_system unless you serve with the trained template" ;;
	*) warn "the template drift check could not run (exit $rc); training goes on" ;;
	esac
}

main() {
	parse_args "$@"
	local ftk lf config state started settings resumed=""
	ftk="$(venv_tool toolkit ftk)"
	TRAIN_PY="$(venv_tool train python)"
	lf="$(venv_tool train llamafactory-cli)"
	settings="$("$ftk" env export)" || die "settings are invalid (above); fix them, ftk env check lists every problem"
	eval "$settings"

	step "train run $RUN_ID: recipe $TRAIN_RECIPE, model $BASE_MODEL_PATH, data sets $DATASETS -> $RUN_DIR"
	info "preflight: model folder, GPUs ($TRAIN_GPUS), disk ($TRAIN_MIN_FREE_MB MiB), run folder, data sets, template"
	check_model_dir "$BASE_MODEL_PATH" || exit 1
	check_gpus "$TRAIN_GPUS" "training (TRAIN_GPUS)" || exit 1
	check_disk "$(ftk_path "$RUNS_DIR")" "$TRAIN_MIN_FREE_MB" || exit 1
	state="$("$ftk" train state)"
	config="$("$ftk" train preflight "${PREFLIGHT_ARGS[@]}")" || exit 1
	check_template_drift "$config"
	if ((PREFLIGHT_ONLY)); then
		ok "preflight passed; config in $config (not training: --preflight-only)"
		return 0
	fi
	[[ "$state" == resume* && " ${PREFLIGHT_ARGS[*]} " != *" --overwrite "* ]] && resumed="${state#resume }"

	# LLaMA-Factory reads these to launch torchrun across GPUs and nodes.
	if truthy "$FORCE_TORCHRUN"; then export FORCE_TORCHRUN=1; else unset FORCE_TORCHRUN; fi
	export NNODES NODE_RANK MASTER_ADDR MASTER_PORT
	step "training: llamafactory-cli train $config${resumed:+ (resuming from $resumed)}; log $RUN_DIR/train.log"
	started="$(date +%s)"
	run_logged "$RUN_DIR/train.log" "$lf" train "$config" ||
		die "training failed (log: $RUN_DIR/train.log); fix the cause and run scripts/train.sh again: it resumes from the last checkpoint"

	local adapter="$RUN_DIR/adapter"
	[[ -f "$adapter/adapter_config.json" ]] || die "training ended without $adapter/adapter_config.json; see $RUN_DIR/train.log"
	[[ -f "$adapter/training_loss.png" ]] || warn "no loss plot in $adapter (plot_loss: true in the recipe writes training_loss.png)"
	step "manifest: $RUN_DIR/manifest.json"
	"$(venv_tool train ftk)" train manifest "$RUN_DIR" --started "$started" ${resumed:+--resumed-from "$resumed"} ||
		die "could not write $RUN_DIR/manifest.json"
	ok "run $RUN_ID done: adapter $adapter, loss plot $adapter/training_loss.png, manifest $RUN_DIR/manifest.json"
}

main "$@"
