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
# `ftk run train` is the stage. Preflight (`ftk doctor --stage train` lists the host checks): base model folder complete; every data set registered and valid (ftk dataset validate); template
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
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

exec_stage train "$@"
