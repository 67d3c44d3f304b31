#!/usr/bin/env bash
# Usage: scripts/init.sh [--help]
#
# First run of a host (the `init` compose service: `docker compose run --rm init`), idempotent: a second run
# changes nothing. As the host user who owns the project folder (the container starts as root only to find
# that user and drop to it; natively it runs as you):
#   ftk init        folders the compose mounts need (models, runs, caches), FTK_UID/FTK_GID in .env (the old file
#                   kept as .env.bak), the gateway -> vLLM key, Grafana's admin password, and a first client API
#                   key, printed once
#   certs           the TLS CA and server certificate of the gateway (scripts/certs.sh)
#   data set        the project's example set data/identity.json registered as `identity` when DATASETS names it
# Then: docker compose --profile download up, --profile train up, ... (docs/gpu-host.md).
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# as_user CMD...: run CMD as the project folder's owner (HOST_UID:HOST_GID), dropping root when we have it.
as_user() {
	if [[ "$(id -u)" == 0 && "$HOST_UID" != 0 ]]; then
		HOME=/tmp setpriv --reuid="$HOST_UID" --regid="$HOST_GID" --clear-groups -- "$@"
	else
		"$@"
	fi
}

main() {
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	"") ;;
	*) die "unknown argument '$1'; see scripts/init.sh --help" 2 ;;
	esac
	if [[ "$(id -u)" == 0 ]]; then
		HOST_UID="$(stat -c %u "$FTK_HOME")" HOST_GID="$(stat -c %g "$FTK_HOME")"
	else
		HOST_UID="$(id -u)" HOST_GID="$(id -g)"
	fi
	[[ -f "$FTK_HOME/.env" ]] || die "$FTK_HOME/.env does not exist; make it first: cp .env.example .env"
	local ftk
	ftk="$(venv_tool toolkit ftk)"
	step "init: folders, ids, keys and passwords as uid $HOST_UID gid $HOST_GID (the owner of the project folder)"
	as_user "$ftk" init --uid "$HOST_UID" --gid "$HOST_GID" ${FTK_INIT_PROJECT_ONLY:+--project-only}
	step "init: TLS certificate of the gateway"
	as_user "$FTK_HOME/scripts/certs.sh"
	export_settings
	if [[ " ${DATASETS//,/ } " == *" identity "* ]]; then
		step "init: the example data set identity (data/identity.json)"
		as_user "$ftk" dataset register "$FTK_HOME/data/identity.json" --name identity
	fi
	ok "init done; next: docker compose --profile download up"
}

main "$@"
