#!/usr/bin/env bash
# Usage: scripts/images.sh [--cpu] [--extra-ca FILE]... [--wheelhouse DIR] [SERVICE...]
#
# Builds the images of compose.yaml (with --cpu: of compose.yaml + compose.cpu.yaml) one after another, and
# prints each image's build time and size. Tags come from .env (FTK_IMAGE_TAG).
#   default   GPU hosts: ftk-toolkit, ftk-train (CUDA base), ftk-serve (the pinned vllm/vllm-openai); the
#             gateway and Prometheus run their official images unchanged
#   --cpu     CPU hosts: the same Dockerfiles on a Debian 12 base (CPU_BASE_IMAGE), plus Debian's nginx,
#             Prometheus and nginx exporter. When CPU_BASE_IMAGE is ftk-debian:bookworm (hosts no registry
#             answers) and that image is missing, it is made here with debootstrap from the host's Debian mirror.
#             The CPU torch wheel is fetched into docker/build/wheels with the host's pip when missing there.
# Build inputs for proxied or air-gapped hosts (docs/images.md; used during the build only, in no layer):
#   --extra-ca FILE    an extra CA certificate for HTTPS inside the builds (repeatable): docker/build/ca/
#   --wheelhouse DIR   wheels pip inside the builds searches first: copied to docker/build/wheels/
# SERVICE...: build only these compose services (default: every service that has a build).
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

LOCAL_BASE="ftk-debian:bookworm"
GPU_SERVICES=(ftk train serve)
# prometheus first: the CPU toolkit image takes promtool from it
CPU_SERVICES=(prometheus gateway nginx-exporter ftk train serve)
CPU=0
SERVICES=()
BUILD_DIR="$FTK_HOME/docker/build"

parse_args() {
	while (($#)); do
		case "$1" in
		-h | --help)
			show_help "$0"
			exit 0
			;;
		--cpu) CPU=1 ;;
		--extra-ca)
			[[ $# -ge 2 && -f "$2" ]] || die "--extra-ca needs an existing certificate file (PEM)" 2
			install -m 0644 "$2" "$BUILD_DIR/ca/$(basename "${2%.*}").crt"
			shift
			;;
		--wheelhouse)
			[[ $# -ge 2 && -d "$2" ]] || die "--wheelhouse needs a folder of .whl files" 2
			cp -f "$2"/*.whl "$BUILD_DIR/wheels/" 2>/dev/null || die "--wheelhouse $2 holds no .whl file" 2
			shift
			;;
		-*) die "unknown option '$1'; see scripts/images.sh --help" 2 ;;
		*) SERVICES+=("$1") ;;
		esac
		shift
	done
}

compose() {
	local files=(-f "$FTK_HOME/compose.yaml")
	((CPU)) && files+=(-f "$FTK_HOME/compose.cpu.yaml")
	COMPOSE_BAKE=false docker compose --project-directory "$FTK_HOME" "${files[@]}" --profile '*' "$@"
}

# local_base: a Debian 12 base image from the host's Debian mirror (no registry needed), about 30 s.
local_base() {
	docker image inspect "$LOCAL_BASE" >/dev/null 2>&1 && return 0
	require_cmd debootstrap || die "debootstrap is missing; run: scripts/setup.sh docker"
	local root mirror
	mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
	mirror="${mirror:-http://deb.debian.org/debian}"
	root="$(mktemp -d)"
	step "base image $LOCAL_BASE: debootstrap --variant=minbase bookworm from $mirror"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
		die "debootstrap failed (log: $root.log); check the Debian mirror $mirror"
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
	tar -C "$root" -c . | docker import - "$LOCAL_BASE" >/dev/null
	rm -rf "$root" "$root.log"
	ok "base image $LOCAL_BASE ($(docker image inspect --format '{{.Size}}' "$LOCAL_BASE" | numfmt --to=iec))"
}

# cpu_torch_wheel: the CPU torch wheel of CPU_TORCH_PACKAGES in docker/build/wheels (the host's pip fetches it:
# its own index, a wheel store it is configured with, or PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu).
cpu_torch_wheel() {
	local spec
	spec="$(tr ' ' '\n' <<<"$CPU_TORCH_PACKAGES" | grep '^torch==' || true)"
	[[ -n "$spec" ]] || return 0
	compgen -G "$BUILD_DIR/wheels/torch-${spec#torch==}-*.whl" >/dev/null && return 0
	step "wheelhouse: $spec for the CPU images (host pip)"
	python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
		-d "$BUILD_DIR/wheels" "$spec" 2> >(grep -v "is ignored: it is neither" >&2) ||
		die "pip could not fetch $spec; set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu or put the wheel in docker/build/wheels (--wheelhouse DIR)"
}

main() {
	parse_args "$@"
	require_cmd docker || die "docker is missing; run: scripts/setup.sh docker" 1
	export_settings
	if ((${#SERVICES[@]} == 0)); then
		if ((CPU)); then SERVICES=("${CPU_SERVICES[@]}"); else SERVICES=("${GPU_SERVICES[@]}"); fi
	fi
	if ((CPU)); then
		[[ "$CPU_BASE_IMAGE" == "$LOCAL_BASE" ]] && local_base
		cpu_torch_wheel
	fi
	local service image started took config rows=()
	config="$(compose config --format json)" || die "compose.yaml does not validate with this .env (above)"
	step "images: building ${SERVICES[*]} ($( ((CPU)) && echo CPU || echo GPU) variants), one after another"
	for service in "${SERVICES[@]}"; do
		image="$(jq -r --arg s "$service" '.services[$s].image // empty' <<<"$config")"
		[[ -n "$image" ]] || die "no compose service '$service' with an image; see scripts/images.sh --help" 2
		step "image $image (service $service)"
		started="$(date +%s)"
		compose build "$service" || die "building $image failed (above); fix the Dockerfile or build input it names"
		took=$(($(date +%s) - started))
		rows+=("$(printf '%-40s %6ss %8s' "$image" "$took" "$(docker image inspect --format '{{.Size}}' "$image" | numfmt --to=iec)")")
	done
	printf '%-40s %7s %8s\n' image "build" size
	printf '%s\n' "${rows[@]}"
}

main "$@"
