#!/usr/bin/env bash
# Usage: scripts/gateway.sh [--help] [--foreground|--daemon|--stop|--reload|--render-only]
#        scripts/gateway.sh --exec-rendered PREFIX | --reload-rendered PREFIX
#
# The nginx TLS gateway in front of vLLM. `ftk run gateway` renders docker/nginx/templates/ from the validated
# settings into GATEWAY_PREFIX (conf/, logs/, temp/, nginx.pid), with the API key map from API_KEYS_FILE and the
# upstream Authorization from VLLM_API_KEY_FILE (both 0600), and checks it with `nginx -t`. This script makes the
# TLS certificate with scripts/certs.sh when TLS_CERT does not exist, and controls the nginx process:
#   --foreground   render, check, then nginx in the foreground (default: `exec ftk run gateway`)
#   --daemon       render, check, start nginx in the background (pid file GATEWAY_PREFIX/nginx.pid) and wait
#                  until it listens
#   --stop         stop the nginx of this prefix (pid file), nothing else
#   --reload       render again (new or revoked keys, upstreams) and reload the running nginx
#   --render-only  render and check the configuration, start nothing (the compose `gateway-config` service)
#   --exec-rendered PREFIX
#                  check with `nginx -t` and run in the foreground the configuration already rendered in PREFIX
#                  (the compose `gateway` service: the nginx image has no ftk; gateway-config rendered it)
#   --reload-rendered PREFIX
#                  check with `nginx -t` and reload the nginx running from PREFIX on the configuration already
#                  rendered there, waiting until its workers run it (compose: `docker compose exec -T gateway
#                  /app/scripts/gateway.sh --reload-rendered /app/runs/gateway` after gateway-config rendered it)
#
# Public:   https://GATEWAY_BIND:GATEWAY_HTTPS_PORT (API key, rate limits, /v1 inference API and /health),
#           http://GATEWAY_BIND:GATEWAY_HTTP_PORT redirects to HTTPS.
# Internal: http://GATEWAY_INTERNAL_BIND:GATEWAY_INTERNAL_PORT (no key; /metrics, LoRA admin, /nginx_status).
# Settings (.env, defaults and checks in ftk's settings): GATEWAY_*, VLLM_UPSTREAMS (or VLLM_HOST:VLLM_PORT),
# TLS_CERT, TLS_KEY, API_KEYS_FILE, VLLM_API_KEY_FILE, RATE_LIMIT_RPS, RATE_LIMIT_BURST, MAX_CONNS_PER_KEY,
# CLIENT_MAX_BODY_SIZE, PROXY_READ_TIMEOUT. GATEWAY_PROXY_BUFFERING=on renders the buffered variant the gateway
# benchmark compares against.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# settings: the effective values (`ftk env export`), the prefix made absolute as ftk resolves it.
settings() {
	export_settings
	GATEWAY_PREFIX="$(ftk_path "$GATEWAY_PREFIX")"
	FTK="$(venv_tool toolkit ftk)"
}

# ensure_certs: a local CA and server certificate (scripts/certs.sh) unless TLS_CERT and TLS_KEY exist.
ensure_certs() {
	[[ -f "$(ftk_path "$TLS_CERT")" && -f "$(ftk_path "$TLS_KEY")" ]] && return 0
	"$FTK_HOME/scripts/certs.sh" || die "could not make the TLS certificate (scripts/certs.sh); see above"
}

nginx_bin() {
	if command -v nginx >/dev/null 2>&1; then
		command -v nginx
	elif [[ -x /usr/sbin/nginx ]]; then
		printf '%s\n' /usr/sbin/nginx
	else
		die "nginx not found; run: make setup (scripts/setup.sh debian), or apt-get install nginx"
	fi
}

nginx_cmd() {
	"$(nginx_bin)" -p "$GATEWAY_PREFIX/" -c "$GATEWAY_PREFIX/conf/nginx.conf" -e "$GATEWAY_PREFIX/logs/error.log" "$@"
}

running_pid() { pidfile_pid "$GATEWAY_PREFIX/nginx.pid"; }

# accepting_workers MASTER: the master's worker processes that take new connections (a worker of the old
# configuration renames itself "worker process is shutting down" and serves only what it holds).
accepting_workers() {
	local p title kids=()
	# the nginx master has one thread; its file ends without a newline, so read reports EOF with the list read
	read -ra kids 2>/dev/null <"/proc/$1/task/$1/children" || true
	for p in "${kids[@]}"; do
		title="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || continue
		[[ "$title" == *"worker process"* && "$title" != *"shutting down"* ]] && printf '%s\n' "$p"
	done
	return 0
}

# reload_and_wait MASTER: `nginx -s reload` only signals the master; wait until every worker taking new
# connections runs the new configuration, so a revoked key or a new limit holds once --reload returns.
reload_and_wait() {
	local master="$1" old now i
	old="$(accepting_workers "$master")"
	nginx_cmd -s reload
	if [[ -z "$old" ]]; then # /proc hides the workers (hidepid, another pid namespace): signalled, not confirmed
		warn "gateway reload signalled (pid $master); its workers are not visible in /proc to confirm it"
		return 0
	fi
	for ((i = 0; i < 200; i++)); do
		now="$(accepting_workers "$master")"
		if [[ -n "$now" ]] && ! grep -qxF -f <(printf '%s\n' "$old") <<<"$now"; then
			ok "gateway reloaded (pid $master): new workers $(tr '\n' ' ' <<<"$now")"
			return 0
		fi
		sleep 0.1
	done
	die "nginx (pid $master) did not start workers with the new configuration within 20 s; see $GATEWAY_PREFIX/logs/error.log"
}

start_daemon() {
	local pid i
	if pid="$(running_pid)"; then
		die "the gateway of $GATEWAY_PREFIX already runs (pid $pid); use --reload, or --stop first"
	fi
	ensure_certs
	"$FTK" run gateway --prepare
	info "starting nginx in the background (pid file $GATEWAY_PREFIX/nginx.pid)"
	nginx_cmd
	for ((i = 0; i < 50; i++)); do
		if pid="$(running_pid)" && (exec 3<>"/dev/tcp/$GATEWAY_BIND/$GATEWAY_HTTPS_PORT") 2>/dev/null; then
			ok "gateway up (pid $pid): https://$GATEWAY_SERVER_NAME:$GATEWAY_HTTPS_PORT/v1, internal http://$GATEWAY_INTERNAL_BIND:$GATEWAY_INTERNAL_PORT"
			return 0
		fi
		sleep 0.1
	done
	die "nginx did not start listening on $GATEWAY_BIND:$GATEWAY_HTTPS_PORT; see $GATEWAY_PREFIX/logs/error.log"
}

reload() {
	local pid
	pid="$(running_pid)" || die "no gateway runs from $GATEWAY_PREFIX; start it with scripts/gateway.sh --daemon"
	ensure_certs
	"$FTK" run gateway --render-only
	reload_and_wait "$pid"
}

stop() {
	local pid i
	if ! pid="$(running_pid)"; then
		info "no gateway runs from $GATEWAY_PREFIX (no live pid in nginx.pid)"
		return 0
	fi
	info "stopping the gateway (pid $pid)"
	kill -QUIT "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			ok "gateway stopped"
			return 0
		}
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null || true
	ok "gateway stopped (terminated)"
}

# exec_rendered PREFIX: nginx on a configuration rendered elsewhere (no settings are read: ftk may be absent).
exec_rendered() {
	local out
	GATEWAY_PREFIX="${1%/}"
	[[ -f "$GATEWAY_PREFIX/conf/nginx.conf" ]] ||
		die "$GATEWAY_PREFIX/conf/nginx.conf does not exist; render it first (ftk run gateway --render-only; compose: the gateway-config service)"
	info "gateway: checking $GATEWAY_PREFIX/conf/nginx.conf, then nginx in the foreground"
	out="$(nginx_cmd -t 2>&1)" || {
		printf '%s\n' "$out" >&2
		die "nginx -t refused $GATEWAY_PREFIX/conf/nginx.conf (see above); fix the setting it names and render again"
	}
	ok "nginx -t: configuration ok"
	exec "$(nginx_bin)" -p "$GATEWAY_PREFIX/" -c "$GATEWAY_PREFIX/conf/nginx.conf" \
		-e "$GATEWAY_PREFIX/logs/error.log" -g 'daemon off;'
}

# reload_rendered PREFIX: the running nginx of PREFIX on a configuration rendered elsewhere (no settings are read).
reload_rendered() {
	local pid out
	GATEWAY_PREFIX="${1%/}"
	pid="$(running_pid)" || die "no gateway runs from $GATEWAY_PREFIX (no live pid in nginx.pid); start it first"
	out="$(nginx_cmd -t 2>&1)" || {
		printf '%s\n' "$out" >&2
		die "nginx -t refused $GATEWAY_PREFIX/conf/nginx.conf (see above); the running gateway keeps its configuration"
	}
	reload_and_wait "$pid"
}

main() {
	local mode="${1:---foreground}"
	case "$mode" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	--exec-rendered)
		(($# == 2)) || die "--exec-rendered needs one argument, the prefix with the rendered conf/nginx.conf" 2
		exec_rendered "$2"
		;;
	--reload-rendered)
		(($# == 2)) || die "--reload-rendered needs one argument, the prefix with the rendered conf/nginx.conf" 2
		reload_rendered "$2"
		return
		;;
	--foreground | --daemon | --stop | --reload | --render-only)
		(($# <= 1)) || die "unexpected argument '$2'; see scripts/gateway.sh --help" 2
		;;
	*) die "unknown option '$1'; see scripts/gateway.sh --help" 2 ;;
	esac
	settings
	case "$mode" in
	--stop) stop ;;
	--daemon) start_daemon ;;
	--reload) reload ;;
	--render-only)
		ensure_certs
		exec "$FTK" run gateway --render-only
		;;
	--foreground)
		ensure_certs
		exec "$FTK" run gateway
		;;
	esac
}

main "$@"
