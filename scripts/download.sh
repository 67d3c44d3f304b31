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
# `ftk run download` is the stage (`ftk doctor --stage download` lists its checks). Prints the model folder on stdout when it is complete; exits 1 with one line per problem otherwise.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

exec_stage download "$@"
