#!/usr/bin/env bash
# Usage: scripts/monitor.sh [--help] [--foreground|--daemon|--stop|--render-only]
#
# Prometheus for the stack. Renders docker/prometheus/prometheus.yml.template with envsubst (explicit variable
# list) into MONITOR_DIR (default runs/monitor), checks it and the alert rules (docker/prometheus/rules) with
# promtool, then:
#   --foreground   run Prometheus in the foreground (default)
#   --daemon       start it in the background (MONITOR_DIR/prometheus.pid, log MONITOR_DIR/prometheus.log) and
#                  wait until it is ready
#   --stop         stop the Prometheus of this MONITOR_DIR (pid file), nothing else
#   --render-only  render and check, start nothing (the compose `monitor` profile runs this in a one-shot
#                  container writing the file Prometheus then reads)
# Prometheus listens on PROMETHEUS_BIND:PROMETHEUS_PORT, keeps its data in MONITOR_DIR/data, and scrapes:
#   vllm     every VLLM_UPSTREAMS entry (or VLLM_HOST:VLLM_PORT) directly, or PROMETHEUS_VLLM_TARGETS
#   gateway  `ftk gateway metrics` on 127.0.0.1:GATEWAY_METRICS_PORT, or PROMETHEUS_GATEWAY_TARGETS
#   gpu      PROMETHEUS_GPU_TARGETS (NVIDIA DCGM exporter), none by default
#   itself.  Every SCRAPE_INTERVAL. PROMETHEUS_RULES_DIR points at the rules (default docker/prometheus/rules).
set -Eeuo pipefail
# shellcheck source=scripts/lib/checks.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/checks.sh"

PROM_TEMPLATE="${PROMETHEUS_TEMPLATE:-$FTK_HOME/docker/prometheus/prometheus.yml.template}"
TEMPLATE_VARS=(SCRAPE_INTERVAL PROMETHEUS_RULES_DIR PROMETHEUS_SELF_TARGET PROMETHEUS_VLLM_TARGETS
	PROMETHEUS_GATEWAY_TARGETS PROMETHEUS_GPU_TARGETS)

# yaml_targets LIST: 'a:1', 'b:2' from a comma- or space-separated host:port list (empty: nothing).
yaml_targets() {
	local item out=() key="$2"
	for item in ${1//,/ }; do
		[[ "$item" =~ ^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$ ]] ||
			die "$key: '$item' is not host:port; fix it in .env"
		out+=("'$item'")
	done
	local IFS=,
	printf '%s\n' "${out[*]}"
}

settings() {
	export_settings
	MONITOR_DIR="$(ftk_path "$MONITOR_DIR")"
	# not a setting: where the rules live in this checkout (tests point it elsewhere)
	PROMETHEUS_RULES_DIR="$(ftk_path "${PROMETHEUS_RULES_DIR:-docker/prometheus/rules}")"
	local self_host="$PROMETHEUS_BIND" vllm="$PROMETHEUS_VLLM_TARGETS" gateway="$PROMETHEUS_GATEWAY_TARGETS"
	[[ "$self_host" == 0.0.0.0 || "$self_host" == "::" ]] && self_host=127.0.0.1
	# shellcheck disable=SC2034 # exported below with the other template variables
	PROMETHEUS_SELF_TARGET="$self_host:$PROMETHEUS_PORT"
	if [[ -z "${vllm// /}" ]]; then
		vllm="$VLLM_UPSTREAMS"
		[[ -n "${vllm// /}" ]] || vllm="$VLLM_HOST:$VLLM_PORT"
		vllm="${vllm//0.0.0.0:/127.0.0.1:}"
	fi
	[[ -n "${gateway// /}" ]] || gateway="127.0.0.1:$GATEWAY_METRICS_PORT"
	PROMETHEUS_VLLM_TARGETS="$(yaml_targets "$vllm" PROMETHEUS_VLLM_TARGETS)"
	PROMETHEUS_GATEWAY_TARGETS="$(yaml_targets "$gateway" PROMETHEUS_GATEWAY_TARGETS)"
	PROMETHEUS_GPU_TARGETS="$(yaml_targets "$PROMETHEUS_GPU_TARGETS" PROMETHEUS_GPU_TARGETS)"
	export "${TEMPLATE_VARS[@]}"
}

render() {
	local vars out
	require_cmd envsubst "install gettext-base (make setup does)" || exit 1
	mkdir -p "$MONITOR_DIR/data"
	out="$MONITOR_DIR/prometheus.yml"
	# shellcheck disable=SC2016 # the literal ${NAME} list envsubst expects
	vars="$(printf '${%s} ' "${TEMPLATE_VARS[@]}")"
	envsubst "$vars" <"$PROM_TEMPLATE" >"$out.tmp"
	mv -f "$out.tmp" "$out"
	if ! command -v promtool >/dev/null 2>&1; then
		# e.g. the compose one-shot renderer: Prometheus checks the file itself when it starts
		warn "promtool not found: $out is not checked here (make setup installs it natively)"
	elif ! promtool check config "$out" >"$MONITOR_DIR/promtool.log" 2>&1; then
		cat "$MONITOR_DIR/promtool.log" >&2
		die "promtool check config refused $out (see above); fix the setting it names"
	fi
	ok "rendered $out (vllm: $PROMETHEUS_VLLM_TARGETS; gateway: $PROMETHEUS_GATEWAY_TARGETS; rules: $PROMETHEUS_RULES_DIR)"
}

prometheus_args() {
	printf '%s\n' "--config.file=$MONITOR_DIR/prometheus.yml" "--storage.tsdb.path=$MONITOR_DIR/data" \
		"--web.listen-address=$PROMETHEUS_BIND:$PROMETHEUS_PORT" "--storage.tsdb.retention.time=15d" \
		"--web.enable-lifecycle"
}

running_pid() { pidfile_pid "$MONITOR_DIR/prometheus.pid"; }

start_daemon() {
	local pid i args probe="$PROMETHEUS_BIND"
	if pid="$(running_pid)"; then
		die "Prometheus of $MONITOR_DIR already runs (pid $pid); stop it first with --stop"
	fi
	[[ "$probe" == 0.0.0.0 ]] && probe=127.0.0.1
	check_port_free "$PROMETHEUS_PORT" "$probe" || exit 1
	mapfile -t args < <(prometheus_args)
	nohup prometheus "${args[@]}" >"$MONITOR_DIR/prometheus.log" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$MONITOR_DIR/prometheus.pid"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || die "Prometheus exited at start; see $MONITOR_DIR/prometheus.log"
		if curl -fsS "http://$probe:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; then
			ok "Prometheus ready (pid $pid): http://$probe:$PROMETHEUS_PORT"
			return 0
		fi
		sleep 0.2
	done
	die "Prometheus not ready after 60 s; see $MONITOR_DIR/prometheus.log"
}

stop() {
	local pid i
	if ! pid="$(running_pid)"; then
		info "no Prometheus runs from $MONITOR_DIR"
		return 0
	fi
	info "stopping Prometheus (pid $pid)"
	kill -TERM "$pid"
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || {
			rm -f "$MONITOR_DIR/prometheus.pid"
			ok "Prometheus stopped"
			return 0
		}
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$MONITOR_DIR/prometheus.pid"
	ok "Prometheus stopped (killed)"
}

main() {
	local mode="--foreground"
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	--foreground | --daemon | --stop | --render-only) mode="$1" ;;
	"") ;;
	*) die "unknown option '$1'; see scripts/monitor.sh --help" 2 ;;
	esac
	settings
	if [[ "$mode" == --stop ]]; then
		stop
		return 0
	fi
	info "monitor: rendering $MONITOR_DIR/prometheus.yml, then $mode"
	render
	case "$mode" in
	--render-only) ;;
	--daemon)
		require_cmd prometheus "install prometheus (make setup does)" || exit 1
		start_daemon
		;;
	--foreground)
		require_cmd prometheus "install prometheus (make setup does)" || exit 1
		local args
		mapfile -t args < <(prometheus_args)
		info "Prometheus in the foreground on $PROMETHEUS_BIND:$PROMETHEUS_PORT"
		exec prometheus "${args[@]}"
		;;
	esac
}

main "$@"
