#!/usr/bin/env bash
# Usage: scripts/monitor.sh [--help] [--foreground|--daemon|--stop|--render-only]
#
# Prometheus for the stack. `ftk run monitor` renders docker/prometheus/prometheus.yml.template from the validated
# settings into MONITOR_DIR (default runs/monitor) and checks it and the alert rules (docker/prometheus/rules)
# with promtool; this script controls the process:
#   --foreground   render, check, then Prometheus in the foreground (default: `exec ftk run monitor`)
#   --daemon       render, check, start it in the background (MONITOR_DIR/prometheus.pid, log
#                  MONITOR_DIR/prometheus.log) and wait until it is ready
#   --stop         stop the Prometheus of this MONITOR_DIR (pid file), nothing else
#   --render-only  render and check, start nothing (the compose `monitor` profile runs this in a one-shot
#                  container writing the file Prometheus then reads)
# Prometheus listens on PROMETHEUS_BIND:PROMETHEUS_PORT, keeps its data in MONITOR_DIR/data, and scrapes:
#   vllm     every VLLM_UPSTREAMS entry (or VLLM_HOST:VLLM_PORT) directly, or PROMETHEUS_VLLM_TARGETS
#   gateway  `ftk gateway metrics` on 127.0.0.1:GATEWAY_METRICS_PORT, or PROMETHEUS_GATEWAY_TARGETS
#   gpu      PROMETHEUS_GPU_TARGETS (NVIDIA DCGM exporter), none by default
#   itself.  Every SCRAPE_INTERVAL.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

settings() {
	export_settings
	MONITOR_DIR="$(ftk_path "$MONITOR_DIR")"
	FTK="$(venv_tool toolkit ftk)"
	PROBE="$PROMETHEUS_BIND"
	[[ "$PROBE" == 0.0.0.0 || "$PROBE" == "::" ]] && PROBE=127.0.0.1
	return 0
}

running_pid() { pidfile_pid "$MONITOR_DIR/prometheus.pid"; }

# start_daemon: the foreground stage (`ftk run monitor`, which becomes Prometheus: the pid stays) in the
# background, after a first pass in this terminal shows any settings or promtool error.
start_daemon() {
	local pid i
	if pid="$(running_pid)"; then
		die "Prometheus of $MONITOR_DIR already runs (pid $pid); stop it first with --stop"
	fi
	"$FTK" run monitor --prepare
	info "starting Prometheus in the background (log $MONITOR_DIR/prometheus.log)"
	nohup "$FTK" run monitor >"$MONITOR_DIR/prometheus.log" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$MONITOR_DIR/prometheus.pid"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || die "Prometheus exited at start; see $MONITOR_DIR/prometheus.log"
		if curl -fsS "http://$PROBE:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1; then
			ok "Prometheus ready (pid $pid): http://$PROBE:$PROMETHEUS_PORT"
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
	local mode="${1:---foreground}"
	case "$mode" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	--foreground | --daemon | --stop | --render-only)
		(($# <= 1)) || die "unexpected argument '$2'; see scripts/monitor.sh --help" 2
		;;
	*) die "unknown option '$1'; see scripts/monitor.sh --help" 2 ;;
	esac
	settings
	case "$mode" in
	--stop) stop ;;
	--daemon) start_daemon ;;
	--render-only) exec "$FTK" run monitor --render-only ;;
	--foreground) exec "$FTK" run monitor ;;
	esac
}

main "$@"
