#!/usr/bin/env bash
# Usage: scripts/docker-engine.sh start|stop|status
#
# The Docker engine the compose tests use, started and stopped by this project only when it started it:
#   start    start dockerd in the background when no engine answers (root); its pid goes to
#            .cache/docker/dockerd.pid, its log to .cache/docker/dockerd.log
#   stop     stop the dockerd of that pid file (`make down` runs this), nothing else: an engine the system or
#            the user started is left alone
#   status   say which engine answers and whether this project started it
# Installing the engine and the Compose v2 plugin is set-up's job: scripts/setup.sh docker.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

DIR="$FTK_HOME/.cache/docker"
PIDFILE="$DIR/dockerd.pid"

engine_up() { docker info >/dev/null 2>&1; }

start() {
	engine_up && return 0
	[[ "$(id -u)" == 0 ]] || die "no Docker engine answers and starting dockerd needs root; start it (systemctl start docker) or join the docker group"
	command -v dockerd >/dev/null 2>&1 || die "dockerd is missing; run: scripts/setup.sh docker"
	mkdir -p "$DIR"
	step "docker: starting dockerd (log .cache/docker/dockerd.log; make down stops it)"
	setsid dockerd >"$DIR/dockerd.log" 2>&1 </dev/null &
	printf '%s\n' "$!" >"$PIDFILE"
	local i
	for ((i = 0; i < 60; i++)); do
		if engine_up; then
			ok "docker: engine $(docker version --format '{{.Server.Version}}') ready"
			return 0
		fi
		sleep 0.5
	done
	die "docker: dockerd did not answer within 30 s; see .cache/docker/dockerd.log"
}

stop() {
	local pid i
	pid="$(pidfile_pid "$PIDFILE")" || {
		rm -f "$PIDFILE"
		return 0
	}
	step "docker: stopping the dockerd this project started (pid $pid)"
	kill -TERM "$pid"
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill -0 "$pid" 2>/dev/null && die "dockerd (pid $pid) did not stop within 30 s"
	rm -f "$PIDFILE"
	ok "docker: stopped"
}

status() {
	local pid
	if ! engine_up; then
		info "docker: no engine answers"
	elif pid="$(pidfile_pid "$PIDFILE")"; then
		info "docker: engine $(docker version --format '{{.Server.Version}}'), started by this project (pid $pid)"
	else
		info "docker: engine $(docker version --format '{{.Server.Version}}'), not started by this project"
	fi
}

main() {
	case "${1:-}" in
	start) start ;;
	stop) stop ;;
	status) status ;;
	-h | --help) show_help "$0" ;;
	"") die "no command given; usage: scripts/docker-engine.sh start|stop|status (see --help)" 2 ;;
	*) die "unknown command '$1'; usage: scripts/docker-engine.sh start|stop|status (see --help)" 2 ;;
	esac
}

main "$@"
