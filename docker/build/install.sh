#!/usr/bin/env bash
# Usage (inside a Docker build, with docker/build bind-mounted at /ftk-build by `RUN --mount`):
#   install.sh apt PACKAGE...   Debian/Ubuntu packages, lists removed afterwards
#   install.sh venv             a virtual environment at /opt/venv (the images put it first on PATH)
#   install.sh pip ARG...       pip install with the optional build inputs below, no cache
#
# Optional build inputs, for air-gapped and proxied hosts (empty by default; docs/images.md):
#   docker/build/ca/*.crt       extra CA certificates (a corporate or intercepting proxy) for HTTPS during the build
#   docker/build/wheels/*.whl   a local wheelhouse pip searches before the index (--find-links), e.g. CPU torch
# They are read from the mount during the RUN that needs them: neither is ever copied into an image layer.
set -Eeuo pipefail

INPUTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

main() {
	local what="${1:-}"
	[[ $# -gt 0 ]] && shift
	case "$what" in
	apt) apt_install "$@" ;;
	venv) python3 -m venv /opt/venv ;;
	pip) pip_install "$@" ;;
	-h | --help) sed -n '2,/^[^#]/{/^#/!d;s/^# \{0,1\}//;p;}' "$0" ;;
	*)
		echo "install.sh: unknown command '$what'; use apt, venv or pip" >&2
		return 2
		;;
	esac
}

apt_install() {
	echo "[build] apt: $*"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	rm -rf /var/lib/apt/lists/*
}

# pip_install ARG...: the extra CAs join the system bundle in a temporary file for this one command.
pip_install() {
	local bundle="" certs=() wheels=()
	shopt -s nullglob
	certs=("$INPUTS"/ca/*.crt)
	wheels=("$INPUTS"/wheels/*.whl)
	shopt -u nullglob
	if ((${#certs[@]})); then
		bundle="$(mktemp)"
		cat /etc/ssl/certs/ca-certificates.crt "${certs[@]}" >"$bundle"
		export PIP_CERT="$bundle" SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle"
		echo "[build] pip: ${#certs[@]} extra CA certificate(s) from docker/build/ca"
	fi
	if ((${#wheels[@]})); then
		export PIP_FIND_LINKS="$INPUTS/wheels"
		echo "[build] pip: local wheelhouse docker/build/wheels (${#wheels[@]} wheels)"
	fi
	echo "[build] pip install $*"
	local rc=0
	if command -v uv >/dev/null 2>&1 && [[ ! -x /opt/venv/bin/pip ]]; then
		# the vLLM image installs its own packages with uv into the system Python
		uv pip install --system --no-cache ${PIP_FIND_LINKS:+--find-links "$PIP_FIND_LINKS"} "$@" || rc=$?
	else
		python3 -m pip install --no-cache-dir --disable-pip-version-check --progress-bar off "$@" || rc=$?
	fi
	[[ -z "$bundle" ]] || rm -f "$bundle"
	return "$rc"
}

main "$@"
