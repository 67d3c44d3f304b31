#!/usr/bin/env bash
# setup step: Debian packages the native stack uses. Pinned to the versions Debian 12 ships.
# shellcheck disable=SC2034
# libnginx-mod-http-js: njs, which enforces the gateway's per-key policy (docs/gateway.md)
DEBIAN_PACKAGES=("nginx=1.22.1*" "libnginx-mod-http-js=0.7.9*" "prometheus=2.42.0*" openssl curl jq)

setup_debian() {
	local missing=() cmd
	for cmd in nginx prometheus promtool openssl curl jq; do
		command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || missing+=("$cmd")
	done
	[[ -f /usr/lib/nginx/modules/ngx_http_js_module.so ]] || missing+=(njs)
	((${#missing[@]} == 0)) && return 0
	if [[ "${FTK_SKIP_APT:-0}" == 1 ]]; then
		warn "missing ${missing[*]} and FTK_SKIP_APT=1: install ${DEBIAN_PACKAGES[*]} yourself"
		return 0
	fi
	step "debian: installing ${DEBIAN_PACKAGES[*]} (missing: ${missing[*]})"
	local sudo=""
	[[ "$(id -u)" == 0 ]] || sudo="sudo"
	# Keep the packages' own services from starting on install: the project starts its own on 127.0.0.1.
	local policy=/usr/sbin/policy-rc.d created=0
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		created=1
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${DEBIAN_PACKAGES[@]}" >/dev/null ||
		die "apt-get install ${DEBIAN_PACKAGES[*]} failed; run it by hand to see why"
	((created)) && $sudo rm -f "$policy"
	ok "debian packages ready"
}
