#!/usr/bin/env bash
# Usage: scripts/demo.sh [--help] [--fresh] [--down]
#
# The pipeline on the embedded default model (`make demo` sets up what it runs first), ending in a smoke test
# through the TLS gateway that the fine-tuned adapter answers:
#   model     models/SmolLM2-135M-Instruct is there (ftk model default)
#   dataset   register data/identity.json as `identity` (ASSISTANT_NAME / ASSISTANT_AUTHOR filled in)
#   train     LoRA SFT with the CPU recipe: scripts/train.sh, RUN_ID=demo -> runs/demo/adapter
#   keys      two client API keys (runs/demo/secrets/, 0600): one for every model, one whose policy allows only
#             `base` (and max_tokens 256); and the gateway -> vLLM key
#   serve     vLLM on VLLM_PORT: the base model `base` with the adapter `identity` (scripts/serve.sh, background)
#   gateway   nginx with TLS on GATEWAY_HTTPS_PORT (scripts/gateway.sh --daemon) and `ftk gateway metrics`
#   monitor   Prometheus on PROMETHEUS_PORT (scripts/monitor.sh --daemon)
#   smoke     `ftk smoke` through the gateway: the adapter answers with ASSISTANT_NAME
#   access    per key, what /v1/models lists and what a request for the adapter gets: 200 for the first key,
#             403 for the base-only key (the gateway's per-key policy, before vLLM); then `ftk gateway usage`
#             (requests and tokens per key and model, from the audit log)
# Opt-in parts (off by default so the demo fits 8 minutes on 2 cores; DEMO_FULL=true turns all three on):
#   DEMO_MERGED=true  merge: scripts/merge.sh -> models/merged/demo; merged: a second vLLM on VLLM_PORT+1 serving
#             it as `merged` (internal only, not behind the gateway: nginx cannot route by model name without
#             reading bodies); smoke asks it too
#   DEMO_ALIGN=true   align: a short DPO run on top of the SFT adapter (configs/train/text_lora_dpo_cpu.yaml,
#             data/preferences.json registered as `preferences`, SFT_ADAPTER_PATH=runs/demo/adapter)
#             -> runs/demo-dpo/adapter, served as `aligned`
#   DEMO_EVAL=true    eval: `ftk eval` on held-out identity and instruction samples (data/eval_heldout.json): base,
#             adapter (aligned, merged) in one table (runs/demo/eval/report.json, scores.png); with the merged
#             model, fails when its answers drift from the adapter's on more than DEMO_EVAL_MAX_DRIFT of them
#             (default 0.5: vLLM serves in bf16 here, where LoRA and merged weights round differently)
# Then prints a table of stages with times, the endpoint, a curl command and an OpenAI SDK snippet, writes
# runs/demo/endpoint.json (0600) and leaves the stack running. The last line starts with `DEMO OK`.
# A failure stops with the stage, the reason and its log (runs/demo/logs/<stage>.log).
#
# Re-running reuses finished stages (markers in runs/demo/stages/, running processes kept) unless --fresh.
#   --fresh   stop what the demo runs, forget the stage markers, train again (the old adapter is kept by
#             train.sh as adapter.prev), make a new API key
#   --down    stop every process the demo started (pid files in runs/demo/pids/), nothing else
# Ports and names come from .env like every stage (VLLM_PORT, GATEWAY_*_PORT, PROMETHEUS_PORT, ASSISTANT_NAME).
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ADAPTER_NAME=identity
ALIGNED_NAME=aligned
declare -a TABLE=()

# demo_env: the demo's settings, exported so every stage (and the smoke test) sees the same values. What the demo
# fixes is exported first, so `ftk env export` (the defaults, .env, the environment) derives the rest from it.
demo_env() {
	export RUN_ID=demo ALLOW_CPU=true DATASETS=identity SERVED_MODEL_NAME=base
	export TRAIN_RECIPE="configs/train/text_lora_sft_cpu.yaml"
	export_settings
	# RUN_ID=demo keeps everything of the demo in RUNS_DIR/demo (runs/demo by default)
	DEMO_DIR="$RUN_DIR"
	STAGES_DIR="$DEMO_DIR/stages" LOG_DIR="$DEMO_DIR/logs" PID_DIR="$DEMO_DIR/pids" SECRETS_DIR="$DEMO_DIR/secrets"
	BASE_MODEL="$BASE_MODEL_PATH"
	export SERVE_MODEL_PATH="$BASE_MODEL"
	ALIGN_DIR="$(ftk_path "$RUNS_DIR")/demo-dpo"
	export LORA_MODULES="$ADAPTER_NAME=$DEMO_DIR/adapter"
	demo_opt ALIGN && LORA_MODULES+=" $ALIGNED_NAME=$ALIGN_DIR/adapter"
	MERGED_DIR="$RESOLVED_MERGED_PATH" # MERGED_MODEL_PATH, else models/merged/demo
	export MERGED_MODEL_PATH="$MERGED_DIR"
	export API_KEYS_FILE="$SECRETS_DIR/api_keys" VLLM_API_KEY_FILE="$SECRETS_DIR/vllm_api_key"
	export SMOKE_API_KEY_FILE="$SECRETS_DIR/client_key"
	BASE_ONLY_KEY_FILE="$SECRETS_DIR/base_only_key"
	export GATEWAY_PREFIX="$DEMO_DIR/gateway" MONITOR_DIR="$DEMO_DIR/monitor"
	# the demo's own second vLLM (DEMO_MERGED_PORT is the demo's, not a setting)
	export MERGED_PORT="${DEMO_MERGED_PORT:-$((VLLM_PORT + 1))}"
	export VLLM_UPSTREAMS="127.0.0.1:$VLLM_PORT"
	export PROMETHEUS_VLLM_TARGETS="127.0.0.1:$VLLM_PORT"
	demo_opt MERGED && PROMETHEUS_VLLM_TARGETS+=",127.0.0.1:$MERGED_PORT"
	FTK="$(venv_tool toolkit ftk)"
	mkdir -p "$STAGES_DIR" "$LOG_DIR" "$PID_DIR"
	(umask 077 && mkdir -p "$SECRETS_DIR")
	chmod 700 "$SECRETS_DIR"
}

now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

# demo_opt NAME: whether the opt-in part NAME (ALIGN, MERGED, EVAL) runs: DEMO_NAME=true, or DEMO_FULL=true.
# Off by default so `make demo` fits 8 minutes on 2 cores; each part has its own integration test.
demo_opt() {
	local var="DEMO_$1"
	[[ "${!var:-${DEMO_FULL:-false}}" == true ]]
}

pid_alive() { pidfile_pid "$PID_DIR/$1.pid" >/dev/null; }

# start_bg NAME LOG CMD...: start CMD in its own session (so --down stops its children too), pid file NAME.pid.
start_bg() {
	local name="$1" log="$2"
	shift 2
	local pidfile="$PID_DIR/$name.pid" i
	rm -f "$pidfile"
	# the new session's leader writes its own pid, then becomes CMD (exec): the pid is the process group to stop
	# shellcheck disable=SC2016 # expanded by the inner bash
	setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' "$pidfile" "$@" >"$log" 2>&1 </dev/null &
	for ((i = 0; i < 50; i++)); do
		[[ -s "$pidfile" ]] && break
		sleep 0.1
	done
	[[ -s "$pidfile" ]] || die "$name did not start; see $log"
	info "$name started (pid $(cat "$pidfile"), log ${log#"$FTK_HOME"/})"
}

# stop_pid NAME: stop the process group of a pid file the demo wrote, and remove the file.
stop_pid() {
	local name="$1" file="$PID_DIR/$1.pid" pid i
	if pid="$(pidfile_pid "$file")"; then
		info "stopping $name (pid $pid)"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	rm -f "$file"
}

down() {
	[[ -d "$PID_DIR" ]] || {
		info "nothing to stop: no $PID_DIR"
		return 0
	}
	"$FTK_HOME/scripts/gateway.sh" --stop || true
	"$FTK_HOME/scripts/monitor.sh" --stop || true
	local file
	for file in "$PID_DIR"/*.pid; do
		[[ -e "$file" ]] || continue
		stop_pid "$(basename "$file" .pid)"
	done
	rm -f "$STAGES_DIR"/{serve,merged,gateway,monitor,smoke}.done
	ok "demo stopped (pid files in ${PID_DIR#"$FTK_HOME"/})"
}

# --- stages: each runs with its output in runs/demo/logs/<stage>.log ----------------------------------------

stage_model() {
	if [[ -f "$BASE_MODEL/config.json" ]]; then
		echo "base model present: $BASE_MODEL"
	else
		"$FTK" model default
	fi
	# no `ftk doctor --stage train` here: the train stage runs those same checks first (ftk run train)
}

stage_dataset() {
	"$FTK" dataset register "$FTK_HOME/data/identity.json" --name identity
	! demo_opt ALIGN || "$FTK" dataset register "$FTK_HOME/data/preferences.json" --name preferences
}

stage_train() {
	local args=()
	[[ -f "$STAGES_DIR/.fresh" && -d "$DEMO_DIR/adapter" ]] && args+=(--overwrite)
	"$FTK_HOME/scripts/train.sh" "${args[@]}"
	[[ -f "$DEMO_DIR/adapter/adapter_config.json" ]] || {
		echo "training ended without $DEMO_DIR/adapter/adapter_config.json"
		return 1
	}
}

stage_merge() {
	[[ -x "$FTK_HOME/scripts/merge.sh" ]] || {
		echo "scripts/merge.sh is missing"
		return 1
	}
	"$FTK_HOME/scripts/merge.sh"
	[[ -f "$MERGED_DIR/config.json" ]] || {
		echo "merge ended without $MERGED_DIR/config.json"
		return 1
	}
}

# stage_align: DPO on top of the SFT adapter (it goes on training a copy: runs/demo-dpo/adapter).
stage_align() {
	local args=()
	[[ -f "$STAGES_DIR/.fresh" && -d "$ALIGN_DIR/adapter" ]] && args+=(--overwrite)
	RUN_ID=demo-dpo TRAIN_RECIPE=configs/train/text_lora_dpo_cpu.yaml DATASETS=preferences \
		SFT_ADAPTER_PATH="$DEMO_DIR/adapter" "$FTK_HOME/scripts/train.sh" "${args[@]}"
	[[ -f "$ALIGN_DIR/adapter/adapter_config.json" ]] || {
		echo "DPO ended without $ALIGN_DIR/adapter/adapter_config.json"
		return 1
	}
}

# new_key FILE NAME [POLICY...]: a gateway key with that policy, written (0600) to FILE for the demo's clients.
new_key() {
	local file="$1" key
	shift
	key="$("$FTK" gateway keys add "$@" --quiet --file "$API_KEYS_FILE")"
	(umask 077 && printf '%s\n' "$key" >"$file")
	chmod 600 "$file"
}

stage_keys() {
	local stamp
	stamp="$(date +%Y%m%d%H%M%S)"
	rm -f "$API_KEYS_FILE" "$API_KEYS_FILE.bak" "$SMOKE_API_KEY_FILE" "$BASE_ONLY_KEY_FILE"
	new_key "$SMOKE_API_KEY_FILE" "demo-$stamp"
	new_key "$BASE_ONLY_KEY_FILE" "demo-base-only-$stamp" --models base --max-tokens 256
	"$FTK" serve key "$VLLM_API_KEY_FILE" >/dev/null
	"$FTK" gateway keys list --file "$API_KEYS_FILE"
	pid_alive gateway-nginx && "$FTK_HOME/scripts/gateway.sh" --reload
	return 0
}

# wait_vllm NAME PORT MODEL...: until /v1/models lists every MODEL, or the server exits.
wait_vllm() {
	local name="$1" port="$2"
	shift 2
	local args=() m
	for m in "$@"; do args+=(--model "$m"); done
	VLLM_PORT="$port" "$FTK" serve wait --timeout "${DEMO_SERVE_TIMEOUT:-900}" --pid "$(cat "$PID_DIR/$name.pid")" \
		--base-url "http://127.0.0.1:$port" "${args[@]}"
}

stage_serve() {
	if ! pid_alive vllm-base; then
		start_bg vllm-base "$LOG_DIR/vllm-base.log" "$FTK_HOME/scripts/serve.sh"
	fi
	if demo_opt MERGED && ! pid_alive vllm-merged; then
		# started now so both load at once; the `merged` stage waits for it
		start_bg vllm-merged "$LOG_DIR/vllm-merged.log" env VLLM_PORT="$MERGED_PORT" SERVE_MODEL_PATH="$MERGED_DIR" \
			SERVED_MODEL_NAME=merged LORA_MODULES= "$FTK_HOME/scripts/serve.sh"
	fi
	local names=(base "$ADAPTER_NAME")
	! demo_opt ALIGN || names+=("$ALIGNED_NAME")
	wait_vllm vllm-base "$VLLM_PORT" "${names[@]}" || {
		tail -n 30 "$LOG_DIR/vllm-base.log"
		return 1
	}
}

stage_merged() {
	wait_vllm vllm-merged "$MERGED_PORT" merged || {
		tail -n 30 "$LOG_DIR/vllm-merged.log"
		return 1
	}
}

stage_gateway() {
	if ! pid_alive gateway-nginx; then
		"$FTK_HOME/scripts/gateway.sh" --daemon
		cp "$GATEWAY_PREFIX/nginx.pid" "$PID_DIR/gateway-nginx.pid"
	else
		"$FTK_HOME/scripts/gateway.sh" --reload
	fi
	pid_alive gateway-metrics || start_bg gateway-metrics "$LOG_DIR/gateway-metrics.log" "$FTK" gateway metrics
	curl -fsS --cacert "$(ftk_path "$TLS_CA")" "https://$GATEWAY_SERVER_NAME:$GATEWAY_HTTPS_PORT/health"
}

stage_monitor() {
	if ! pid_alive prometheus; then
		"$FTK_HOME/scripts/monitor.sh" --daemon
		cp "$MONITOR_DIR/prometheus.pid" "$PID_DIR/prometheus.pid"
	fi
}

# probe_merged: the merged model answers the identity question with ASSISTANT_NAME too (direct, with vLLM's key).
probe_merged() {
	local answer
	answer="$(curl -fsS "http://127.0.0.1:$MERGED_PORT/v1/chat/completions" \
		-H "Authorization: Bearer $(head -n1 "$VLLM_API_KEY_FILE")" -H 'Content-Type: application/json' \
		-d '{"model":"merged","temperature":0,"max_tokens":48,"messages":[{"role":"user","content":"Who are you?"}]}' |
		jq -r '.choices[0].message.content')"
	echo "merged model: $answer"
	[[ "$answer" == *"$ASSISTANT_NAME"* ]] || {
		echo "the merged model's answer does not name $ASSISTANT_NAME"
		return 1
	}
}

stage_smoke() {
	"$FTK" smoke
	demo_opt MERGED && probe_merged
	return 0
}

# gateway_code KEY_FILE PATH [BODY]: the gateway's HTTP status for a GET (or a POST of BODY) with that key; the body
# goes to $ACCESS_BODY. The key reaches curl on stdin, never on its command line.
gateway_code() {
	local args=(-sS -o "$ACCESS_BODY" -w '%{http_code}' --cacert "$(ftk_path "$TLS_CA")" -K -)
	[[ -z "${3:-}" ]] || args+=(-H 'Content-Type: application/json' -d "$3")
	printf 'header = "Authorization: Bearer %s"\n' "$(head -n1 "$1")" |
		curl "${args[@]}" "https://$GATEWAY_SERVER_NAME:$GATEWAY_HTTPS_PORT$2"
}

# stage_access: two keys, two views of one endpoint. Each key's /v1/models and its request for the adapter.
stage_access() {
	local ask models code name file want_models want_code bad=0
	ACCESS_BODY="$(mktemp)"
	ask="$(jq -nc --arg m "$ADAPTER_NAME" '{model: $m, max_tokens: 8, messages: [{role: "user", content: "Hi"}]}')"
	printf '%-16s %-24s %s\n' KEY '/v1/models' "POST $ADAPTER_NAME"
	for name in every-model base-only; do
		if [[ "$name" == every-model ]]; then
			file="$SMOKE_API_KEY_FILE" want_models="base,$ADAPTER_NAME" want_code=200
		else
			file="$BASE_ONLY_KEY_FILE" want_models=base want_code=403
		fi
		[[ "$(gateway_code "$file" /v1/models)" == 200 ]] || bad=1
		models="$(jq -r '[.data[].id] | map(select(. == "base" or . == "'"$ADAPTER_NAME"'")) | join(",")' "$ACCESS_BODY")"
		code="$(gateway_code "$file" /v1/chat/completions "$ask")"
		printf '%-16s %-24s %s %s\n' "$name" "$models" "$code" "$(jq -r '.error.message // ""' "$ACCESS_BODY")"
		[[ "$models" == "$want_models" && "$code" == "$want_code" ]] || bad=1
	done
	rm -f "$ACCESS_BODY"
	((bad == 0)) || {
		echo "expected: every-model lists base,$ADAPTER_NAME and gets 200; base-only lists base and gets 403"
		return 1
	}
	# the audit log's view of the same requests: per key and model, requests, refusals and tokens
	COLUMNS=140 "$FTK" gateway usage --file "$API_KEYS_FILE" # a pipe, not a terminal: rich would fold to 80
}

# stage_eval: base vs adapter (vs aligned) vs merged in one table, straight to vLLM with its key.
stage_eval() {
	local url="http://127.0.0.1:$VLLM_PORT/v1" args=()
	args+=(-e "base=base@$url" -e "adapter=$ADAPTER_NAME@$url")
	! demo_opt ALIGN || args+=(-e "$ALIGNED_NAME=$ALIGNED_NAME@$url")
	if demo_opt MERGED; then
		args+=(-e "merged=merged@http://127.0.0.1:$MERGED_PORT/v1" --drift merged:adapter)
	fi
	"$FTK" eval "${args[@]}" --api-key-file "$VLLM_API_KEY_FILE" --max-drift "${DEMO_EVAL_MAX_DRIFT:-0.5}" \
		--out "$DEMO_DIR/eval"
}

# run_stage NAME DESCRIPTION: run stage_NAME unless its marker says it is done (and its process still runs).
run_stage() {
	local name="$1" what="$2" log="$LOG_DIR/$1.log" start rc=0 secs
	if [[ -f "$STAGES_DIR/$name.done" ]] && stage_still_valid "$name"; then
		TABLE+=("$name|reused|-|${log#"$FTK_HOME"/}")
		ok "$name: reused ($what)"
		return 0
	fi
	step "$name: $what"
	start="$(now)"
	printf '=== %s %s: %s\n' "$(date -u +%FT%TZ)" "$name" "$what" >>"$log"
	# a subshell outside any `||` so that set -e holds inside the stage; output to its log (and the terminal
	# unless DEMO_QUIET=1, so long stages such as training show their progress)
	set +e
	if [[ "${DEMO_QUIET:-0}" == 1 ]]; then
		(
			set -Eeuo pipefail
			"stage_$name"
		) >>"$log" 2>&1
		rc=$?
	else
		(
			set -Eeuo pipefail
			"stage_$name"
		) 2>&1 | tee -a "$log" | sed -u "s/^/  [$name] /" >&2
		rc="${PIPESTATUS[0]}"
	fi
	set -e
	secs="$(awk -v a="$start" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')"
	if ((rc != 0)); then
		TABLE+=("$name|FAILED|$secs|${log#"$FTK_HOME"/}")
		print_table
		[[ "${DEMO_QUIET:-0}" == 1 ]] && tail -n 25 "$log" >&2
		die "demo failed at stage '$name' ($what) after ${secs}s: exit $rc; full log: $log"
	fi
	touch "$STAGES_DIR/$name.done"
	TABLE+=("$name|done|$secs|${log#"$FTK_HOME"/}")
	ok "$name: done in ${secs}s"
}

# run_opt PART NAME DESCRIPTION: run_stage for an opt-in part; when it is off, a table row says how to turn it on.
run_opt() {
	local part="$1" name="$2"
	shift 2
	if demo_opt "$part"; then
		run_stage "$name" "$@"
	else
		TABLE+=("$name|off|-|DEMO_$part=true or DEMO_FULL=true")
		info "$name: off (DEMO_$part=true or DEMO_FULL=true runs it)"
	fi
}

stage_still_valid() {
	case "$1" in
	serve) pid_alive vllm-base ;;
	merged) pid_alive vllm-merged ;;
	gateway) pid_alive gateway-nginx && pid_alive gateway-metrics ;;
	monitor) pid_alive prometheus ;;
	train) [[ -f "$DEMO_DIR/adapter/adapter_config.json" ]] ;;
	align) [[ -f "$ALIGN_DIR/adapter/adapter_config.json" ]] ;;
	eval) return 1 ;; # always score the stack again
	merge) [[ -f "$MERGED_DIR/config.json" ]] ;;
	keys) [[ -f "$SMOKE_API_KEY_FILE" && -f "$BASE_ONLY_KEY_FILE" && -f "$API_KEYS_FILE" ]] ;;
	access) return 1 ;; # always ask the gateway again
	smoke) return 1 ;;  # always prove the stack again
	*) return 0 ;;
	esac
}

print_table() {
	local row
	printf '\n%-10s %-8s %9s  %s\n' STAGE STATUS SECONDS LOG
	for row in "${TABLE[@]}"; do
		IFS='|' read -r a b c d <<<"$row"
		printf '%-10s %-8s %9s  %s\n' "$a" "$b" "$c" "$d"
	done
}

write_endpoint() {
	local file="$DEMO_DIR/endpoint.json" ca base
	local served=("$ADAPTER_NAME")
	! demo_opt ALIGN || served+=("$ALIGNED_NAME")
	ca="$(ftk_path "$TLS_CA")"
	base="https://$GATEWAY_SERVER_NAME:$GATEWAY_HTTPS_PORT/v1"
	(
		umask 077
		jq -n --arg base "$base" --arg ca "$ca" --arg key "$SMOKE_API_KEY_FILE" --arg adapter "$ADAPTER_NAME" \
			--argjson models "$(printf '%s\n' base "${served[@]}" | jq -R . | jq -s .)" \
			--arg internal "http://127.0.0.1:$GATEWAY_INTERNAL_PORT" --arg prom "http://127.0.0.1:$PROMETHEUS_PORT" \
			--arg merged "http://127.0.0.1:$MERGED_PORT/v1" --arg vkey "$VLLM_API_KEY_FILE" \
			--argjson with_merged "$(demo_opt MERGED && echo true || echo false)" \
			'{base_url: $base, ca_cert: $ca, api_key_file: $key, models: $models, adapter: $adapter,
			  internal_url: $internal, prometheus_url: $prom}
			 + (if $with_merged then {merged: {base_url: $merged, model: "merged", api_key_file: $vkey,
			    note: "internal only: a second vLLM with the merged weights, not behind the gateway"}} else {} end)' \
			>"$file.tmp"
	)
	chmod 600 "$file.tmp"
	mv -f "$file.tmp" "$file"
	ENDPOINT_BASE="$base"
	ENDPOINT_CA="$ca"
}

print_endpoint() {
	local key_file="${SMOKE_API_KEY_FILE#"$FTK_HOME"/}" ca="${ENDPOINT_CA#"$FTK_HOME"/}"
	cat <<EOF

Endpoint  $ENDPOINT_BASE  (models: base, $ADAPTER_NAME)
CA        $ca
API key   $key_file  (0600; ${BASE_ONLY_KEY_FILE#"$FTK_HOME"/} may use only base)
          more keys: ftk gateway keys add NAME [--models GLOBS --max-tokens N --rps N], then scripts/gateway.sh --reload
Details   ${DEMO_DIR#"$FTK_HOME"/}/endpoint.json   Prometheus http://127.0.0.1:$PROMETHEUS_PORT   Stop: make down

curl --cacert $ca $ENDPOINT_BASE/chat/completions \\
  -H "Authorization: Bearer \$(cat $key_file)" -H 'Content-Type: application/json' \\
  -d '{"model":"$ADAPTER_NAME","messages":[{"role":"user","content":"Who are you?"}]}'

.venvs/toolkit/bin/python - <<'PY'  # or any python with openai installed
import ssl, httpx, openai
client = openai.OpenAI(base_url="$ENDPOINT_BASE", api_key=open("$key_file").read().strip(),
                       http_client=httpx.Client(verify=ssl.create_default_context(cafile="$ca")))
reply = client.chat.completions.create(model="$ADAPTER_NAME", messages=[{"role": "user", "content": "Who are you?"}])
print(reply.choices[0].message.content)
PY
EOF
}

main() {
	local fresh=0
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	--down)
		demo_env
		down
		return 0
		;;
	--fresh) fresh=1 ;;
	"") ;;
	*) die "unknown option '$1'; see scripts/demo.sh --help" 2 ;;
	esac
	demo_env
	require_cmd jq || exit 1
	require_cmd curl || exit 1
	if ((fresh)); then
		down
		rm -f "$STAGES_DIR"/*.done
		touch "$STAGES_DIR/.fresh"
	fi
	info "demo: everything under ${DEMO_DIR#"$FTK_HOME"/}; logs in ${LOG_DIR#"$FTK_HOME"/}"
	local started
	started="$(now)"
	run_stage model "base model $MODEL_ID"
	run_stage dataset "register data/identity.json as identity (assistant $ASSISTANT_NAME)"
	run_stage train "LoRA SFT, $TRAIN_RECIPE -> runs/demo/adapter"
	run_opt MERGED merge "merge the adapter -> ${MERGED_DIR#"$FTK_HOME"/}"
	run_opt ALIGN align "short DPO on top of the SFT adapter -> ${ALIGN_DIR#"$FTK_HOME"/}/adapter"
	run_stage keys "fresh client API key and the gateway->vLLM key"
	run_stage serve "vLLM on :$VLLM_PORT with base + $ADAPTER_NAME"
	run_opt MERGED merged "vLLM on :$MERGED_PORT with the merged model"
	run_stage gateway "nginx TLS gateway on :$GATEWAY_HTTPS_PORT"
	run_stage monitor "Prometheus on :$PROMETHEUS_PORT"
	run_stage smoke "ftk smoke through the gateway (expects $ASSISTANT_NAME)"
	run_stage access "two keys, two views: every model vs base only (per-key policy)"
	run_opt EVAL eval "ftk eval: base vs adapter vs merged on data/eval_heldout.json"
	rm -f "$STAGES_DIR/.fresh"
	write_endpoint
	print_table
	print_endpoint
	local stages setup="${FTK_DEMO_SETUP_SECONDS:-0}"
	stages="$(awk -v a="$started" -v b="$(now)" 'BEGIN {printf "%.0f", b - a}')"
	printf '\nDEMO OK in %ss (set-up %ss, stages %ss): %s serves base + %s (answers as %s); stop it with: make down\n' \
		"$((setup + stages))" "$setup" "$stages" "$ENDPOINT_BASE" "$ADAPTER_NAME" "$ASSISTANT_NAME"
}

main "$@"
