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
# `ftk run merge` is the stage (`ftk doctor --stage merge` lists its checks). Steps: the adapter's base must be this base (path, else config and LoRA shapes: a moved copy passes, another
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
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

exec_stage merge "$@"
