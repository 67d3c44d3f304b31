#!/usr/bin/env bash
# Usage: scripts/gateway.sh [--help] [--foreground|--daemon|--stop|--reload|--render-only]
#
# The nginx TLS gateway in front of vLLM. Renders docker/nginx/templates/ with envsubst (explicit variable
# list: nginx's own $variables stay) into GATEWAY_PREFIX (default runs/gateway: conf/, logs/, temp/, nginx.pid),
# generates the API key map from API_KEYS_FILE and the upstream Authorization from VLLM_API_KEY_FILE (both 0600),
# makes the TLS certificate with scripts/certs.sh when TLS_CERT does not exist, checks with `nginx -t`, then:
#   --foreground   run nginx in the foreground (default; the compose `gateway` service runs this)
#   --daemon       start nginx in the background (pid file GATEWAY_PREFIX/nginx.pid) and wait until it listens
#   --stop         stop the nginx of this prefix (pid file), nothing else
#   --reload       render again (new or revoked keys, upstreams) and reload the running nginx
#   --render-only  render and check the configuration, start nothing
#
# Public:   https://GATEWAY_BIND:GATEWAY_HTTPS_PORT (API key, rate limits, /v1 inference API and /health),
#           http://GATEWAY_BIND:GATEWAY_HTTP_PORT redirects to HTTPS.
# Internal: http://GATEWAY_INTERNAL_BIND:GATEWAY_INTERNAL_PORT (no key; /metrics, LoRA admin, /nginx_status).
# Settings (.env): GATEWAY_*, VLLM_UPSTREAMS (or VLLM_HOST:VLLM_PORT), TLS_CERT, TLS_KEY, API_KEYS_FILE,
# VLLM_API_KEY_FILE, RATE_LIMIT_RPS, RATE_LIMIT_BURST, MAX_CONNS_PER_KEY, CLIENT_MAX_BODY_SIZE, PROXY_READ_TIMEOUT.
# GATEWAY_PROXY_BUFFERING=on renders the buffered variant the gateway benchmark compares against (default off).
set -Eeuo pipefail
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

TEMPLATE_DIR="${GATEWAY_TEMPLATE_DIR:-$FTK_HOME/docker/nginx/templates}"
# The only variables envsubst replaces.
TEMPLATE_VARS=(GATEWAY_USER_DIRECTIVE GATEWAY_PREFIX GATEWAY_SERVER_NAME GATEWAY_BIND GATEWAY_HTTPS_PORT
	GATEWAY_HTTP_PORT GATEWAY_INTERNAL_BIND GATEWAY_INTERNAL_PORT GATEWAY_TLS_CERT GATEWAY_TLS_KEY
	GATEWAY_UPSTREAM_SERVERS GATEWAY_PROXY_BUFFERING RATE_LIMIT_RPS RATE_LIMIT_BURST MAX_CONNS_PER_KEY
	CLIENT_MAX_BODY_SIZE PROXY_READ_TIMEOUT)

nginx_bin() {
	if command -v nginx >/dev/null 2>&1; then
		command -v nginx
	elif [[ -x /usr/sbin/nginx ]]; then
		printf '%s\n' /usr/sbin/nginx
	else
		die "nginx not found; run: make setup (scripts/setup.sh debian), or apt-get install nginx"
	fi
}

# settings: the values the templates use, with the defaults of .env.example, checked.
settings() {
	load_env
	export GATEWAY_PREFIX GATEWAY_SERVER_NAME GATEWAY_BIND GATEWAY_HTTPS_PORT GATEWAY_HTTP_PORT GATEWAY_INTERNAL_BIND \
		GATEWAY_INTERNAL_PORT GATEWAY_TLS_CERT GATEWAY_TLS_KEY GATEWAY_PROXY_BUFFERING RATE_LIMIT_RPS \
		RATE_LIMIT_BURST MAX_CONNS_PER_KEY CLIENT_MAX_BODY_SIZE PROXY_READ_TIMEOUT GATEWAY_USER_DIRECTIVE \
		GATEWAY_UPSTREAM_SERVERS
	GATEWAY_PREFIX="$(ftk_path "${GATEWAY_PREFIX:-runs/gateway}")"
	GATEWAY_SERVER_NAME="${GATEWAY_SERVER_NAME:-localhost}"
	GATEWAY_BIND="${GATEWAY_BIND:-127.0.0.1}"
	GATEWAY_HTTPS_PORT="${GATEWAY_HTTPS_PORT:-8443}"
	GATEWAY_HTTP_PORT="${GATEWAY_HTTP_PORT:-8080}"
	GATEWAY_INTERNAL_BIND="${GATEWAY_INTERNAL_BIND:-127.0.0.1}"
	GATEWAY_INTERNAL_PORT="${GATEWAY_INTERNAL_PORT:-9443}"
	GATEWAY_TLS_CERT="$(ftk_path "${TLS_CERT:-runs/certs/server.crt}")"
	GATEWAY_TLS_KEY="$(ftk_path "${TLS_KEY:-runs/certs/server.key}")"
	GATEWAY_PROXY_BUFFERING="${GATEWAY_PROXY_BUFFERING:-off}"
	RATE_LIMIT_RPS="${RATE_LIMIT_RPS:-20}"
	RATE_LIMIT_BURST="${RATE_LIMIT_BURST:-40}"
	MAX_CONNS_PER_KEY="${MAX_CONNS_PER_KEY:-64}"
	CLIENT_MAX_BODY_SIZE="${CLIENT_MAX_BODY_SIZE:-20m}"
	PROXY_READ_TIMEOUT="${PROXY_READ_TIMEOUT:-600}"
	local key value
	for key in GATEWAY_HTTPS_PORT GATEWAY_HTTP_PORT GATEWAY_INTERNAL_PORT; do
		value="${!key}"
		if [[ ! "$value" =~ ^[0-9]+$ ]] || ((value < 1 || value > 65535)); then
			die "$key='$value' is not a port (1-65535); fix it in .env"
		fi
	done
	for key in RATE_LIMIT_RPS MAX_CONNS_PER_KEY PROXY_READ_TIMEOUT; do
		[[ "${!key}" =~ ^[1-9][0-9]*$ ]] || die "$key='${!key}' must be a whole number >= 1; fix it in .env"
	done
	[[ "$RATE_LIMIT_BURST" =~ ^[0-9]+$ ]] || die "RATE_LIMIT_BURST='$RATE_LIMIT_BURST' must be a whole number >= 0; fix it in .env"
	[[ "$CLIENT_MAX_BODY_SIZE" =~ ^[0-9]+[kKmMgG]?$ ]] || die "CLIENT_MAX_BODY_SIZE='$CLIENT_MAX_BODY_SIZE' is not a size like 20m; fix it in .env"
	[[ "$GATEWAY_PROXY_BUFFERING" =~ ^(on|off)$ ]] || die "GATEWAY_PROXY_BUFFERING='$GATEWAY_PROXY_BUFFERING' must be on or off"
	[[ "$GATEWAY_SERVER_NAME" =~ ^[A-Za-z0-9.*_-]+$ ]] || die "GATEWAY_SERVER_NAME='$GATEWAY_SERVER_NAME' is not a host name; fix it in .env"
	GATEWAY_UPSTREAM_SERVERS="$(upstream_servers)"
	GATEWAY_USER_DIRECTIVE=""
	if [[ "$(id -u)" == 0 ]]; then
		# workers drop root; the prefix folders are made readable for them (0755)
		local user
		for user in www-data nginx nobody; do
			if id "$user" >/dev/null 2>&1; then
				GATEWAY_USER_DIRECTIVE="user $user $(id -gn "$user");"
				break
			fi
		done
	fi
}

# upstream_servers: one nginx `server` line per VLLM_UPSTREAMS entry (host:port), or VLLM_HOST:VLLM_PORT.
upstream_servers() {
	local upstreams="${VLLM_UPSTREAMS:-}" item lines=""
	[[ -n "${upstreams// /}" ]] || upstreams="${VLLM_HOST:-127.0.0.1}:${VLLM_PORT:-8000}"
	for item in ${upstreams//,/ }; do
		[[ "$item" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$ ]] ||
			die "VLLM_UPSTREAMS: '$item' is not host:port; write e.g. VLLM_UPSTREAMS=127.0.0.1:8000,127.0.0.1:8001"
		lines+="server $item max_fails=3 fail_timeout=10s; "
	done
	printf '%s\n' "$lines"
}

key_id() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# render_keys FILE OUT: the nginx maps $api_key_state (missing|invalid|ok|revoked) and $api_key_id.
# FILE has one key per line: KEY [NAME [STATUS [CREATED]]]; STATUS revoked answers 403; '#' starts a comment.
render_keys() {
	local file="$1" out="$2" line key _name status n=0 active=0
	local -A seen=()
	local states="" ids=""
	[[ -f "$file" ]] || die "API_KEYS_FILE $file does not exist; create a key with: ftk gateway keys add NAME"
	[[ -r "$file" ]] || die "API_KEYS_FILE $file is not readable by $(id -un); fix its owner (chmod 600, chown)"
	if [[ "$(stat -c %a "$file")" != 600 && "$(stat -c %a "$file")" != 400 ]]; then
		warn "API_KEYS_FILE $file has mode $(stat -c %a "$file"); it holds secrets: chmod 600 $file"
	fi
	while IFS= read -r line || [[ -n "$line" ]]; do
		n=$((n + 1))
		line="${line%%#*}"
		read -r key _name status _ <<<"$line" || true
		[[ -z "${key:-}" ]] && continue
		[[ "$key" =~ ^[A-Za-z0-9._~+/=-]{16,256}$ ]] ||
			die "$file:$n: the key is not 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -; make one with: ftk gateway keys add NAME"
		status="${status:-active}"
		case "$status" in
		active) status=ok active=$((active + 1)) ;;
		revoked) ;;
		*) die "$file:$n: status '$status' is neither active nor revoked; fix that line" ;;
		esac
		[[ -n "${seen[$key]:-}" ]] && die "$file:$n: the same key appears twice (first on line ${seen[$key]}); remove one"
		seen[$key]=$n
		states+="    \"Bearer $key\" $status;"$'\n'
		ids+="    \"Bearer $key\" $(key_id "$key");"$'\n'
	done <"$file"
	((active > 0)) || die "API_KEYS_FILE $file has no active key; add one with: ftk gateway keys add NAME"
	(
		umask 077
		# shellcheck disable=SC2016 # nginx variables, written literally
		{
			printf '# generated by scripts/gateway.sh from %s; holds secrets (0600), do not edit\n' "$file"
			printf 'map $http_authorization $api_key_state {\n    default invalid;\n    "" missing;\n%s}\n' "$states"
			printf 'map $http_authorization $api_key_id {\n    default "";\n%s}\n' "$ids"
		} >"$out.tmp"
	)
	chmod 600 "$out.tmp"
	mv -f "$out.tmp" "$out"
	info "API keys: $active active from $file"
}

# render_upstream_auth OUT: the Authorization header the gateway sends to vLLM (the client's is never passed on).
render_upstream_auth() {
	local out="$1" file secret=""
	file="$(ftk_path "${VLLM_API_KEY_FILE:-runs/secrets/vllm_api_key}")"
	if [[ -f "$file" ]]; then
		secret="$(head -n1 "$file" | tr -d '[:space:]')"
		[[ "$secret" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "VLLM_API_KEY_FILE $file: the key must be one line of A-Z a-z 0-9 . _ ~ + / = -"
	else
		warn "VLLM_API_KEY_FILE $file does not exist: vLLM gets no key from the gateway (serve.sh should make it)"
	fi
	(
		umask 077
		if [[ -n "$secret" ]]; then
			printf 'proxy_set_header Authorization "Bearer %s";\n' "$secret" >"$out.tmp"
		else
			printf 'proxy_set_header Authorization "";\n' >"$out.tmp"
		fi
	)
	chmod 600 "$out.tmp"
	mv -f "$out.tmp" "$out"
}

render() {
	local tpl rel out vars
	# shellcheck disable=SC2016 # the literal ${NAME} list envsubst expects
	vars="$(printf '${%s} ' "${TEMPLATE_VARS[@]}")"
	require_cmd envsubst "install gettext-base (make setup does)" || exit 1
	require_cmd sha256sum || exit 1
	mkdir -p "$GATEWAY_PREFIX"/{conf/snippets,logs,html} "$GATEWAY_PREFIX"/temp/{client_body,proxy,fastcgi,uwsgi,scgi}
	chmod 755 "$GATEWAY_PREFIX" "$GATEWAY_PREFIX"/{conf,conf/snippets,logs,html,temp}
	if [[ ! -f "$GATEWAY_TLS_CERT" || ! -f "$GATEWAY_TLS_KEY" ]]; then
		"$FTK_HOME/scripts/certs.sh" || die "could not make the TLS certificate (scripts/certs.sh); see above"
	fi
	render_keys "$(ftk_path "${API_KEYS_FILE:-runs/secrets/api_keys}")" "$GATEWAY_PREFIX/conf/api_keys.conf"
	render_upstream_auth "$GATEWAY_PREFIX/conf/upstream_auth.conf"
	while IFS= read -r tpl; do
		rel="${tpl#"$TEMPLATE_DIR"/}"
		out="$GATEWAY_PREFIX/conf/${rel%.template}"
		envsubst "$vars" <"$tpl" >"$out.tmp"
		mv -f "$out.tmp" "$out"
	done < <(find "$TEMPLATE_DIR" -name '*.template' -type f | sort)
	printf '{"status":"ok"}\n' >"$GATEWAY_PREFIX/html/health.json"
	chmod 644 "$GATEWAY_PREFIX/html/health.json"
	info "rendered $TEMPLATE_DIR into $GATEWAY_PREFIX/conf (upstreams: ${GATEWAY_UPSTREAM_SERVERS//max_fails=3 fail_timeout=10s;/})"
}

# worker_can_reach: nginx workers (GATEWAY_USER_DIRECTIVE's user when run as root) must traverse every folder
# above GATEWAY_PREFIX to read html/ and write temp/ (request bodies, buffered responses).
worker_can_reach() {
	[[ -n "$GATEWAY_USER_DIRECTIVE" ]] || return 0
	local dir="$GATEWAY_PREFIX"
	while [[ "$dir" != / ]]; do
		if [[ ! "$(stat -c %A "$dir")" =~ [xt]$ ]]; then
			_GW_BLOCKER="$dir"
			return 1
		fi
		dir="$(dirname "$dir")"
	done
}

nginx_cmd() {
	"$(nginx_bin)" -p "$GATEWAY_PREFIX/" -c "$GATEWAY_PREFIX/conf/nginx.conf" -e "$GATEWAY_PREFIX/logs/error.log" "$@"
}

check_config() {
	local out
	out="$(nginx_cmd -t 2>&1)" || {
		printf '%s\n' "$out" >&2
		die "nginx -t refused $GATEWAY_PREFIX/conf/nginx.conf (see above); fix the setting it names"
	}
	ok "nginx -t: configuration ok"
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

check_ports() {
	check_port_free "$GATEWAY_HTTPS_PORT" "$GATEWAY_BIND" &&
		check_port_free "$GATEWAY_HTTP_PORT" "$GATEWAY_BIND" &&
		check_port_free "$GATEWAY_INTERNAL_PORT" "$GATEWAY_INTERNAL_BIND" || exit 1
}

start_daemon() {
	local pid i
	if pid="$(running_pid)"; then
		die "the gateway of $GATEWAY_PREFIX already runs (pid $pid); use --reload, or --stop first"
	fi
	check_ports
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

main() {
	local mode="--foreground"
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	--foreground | --daemon | --stop | --reload | --render-only) mode="$1" ;;
	"") ;;
	*) die "unknown option '$1'; see scripts/gateway.sh --help" 2 ;;
	esac
	settings
	if [[ "$mode" == --stop ]]; then
		stop
		return 0
	fi
	info "gateway: rendering nginx config into $GATEWAY_PREFIX, then $mode"
	render
	check_config
	if [[ "$mode" != --render-only ]] && ! worker_can_reach; then
		die "nginx workers ($GATEWAY_USER_DIRECTIVE) cannot reach $GATEWAY_PREFIX: $_GW_BLOCKER is mode $(stat -c %a "$_GW_BLOCKER"); choose a GATEWAY_PREFIX under folders others can traverse, or chmod o+x $_GW_BLOCKER"
	fi
	case "$mode" in
	--render-only) ok "rendered $GATEWAY_PREFIX/conf/nginx.conf" ;;
	--reload)
		local pid
		pid="$(running_pid)" || die "no gateway runs from $GATEWAY_PREFIX; start it with scripts/gateway.sh --daemon"
		reload_and_wait "$pid"
		;;
	--daemon) start_daemon ;;
	--foreground)
		check_ports
		info "nginx in the foreground: https://$GATEWAY_BIND:$GATEWAY_HTTPS_PORT (public), http://$GATEWAY_INTERNAL_BIND:$GATEWAY_INTERNAL_PORT (internal)"
		exec "$(nginx_bin)" -p "$GATEWAY_PREFIX/" -c "$GATEWAY_PREFIX/conf/nginx.conf" \
			-e "$GATEWAY_PREFIX/logs/error.log" -g 'daemon off;'
		;;
	esac
}

main "$@"
