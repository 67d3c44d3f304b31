#!/usr/bin/env bash
# Virtual environments under .venvs/, made from a pinned requirements file and re-made only when it changes.
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FTK_VENVS="${FTK_VENVS:-$FTK_HOME/.venvs}"
FTK_PYTHON="${FTK_PYTHON:-python3}"

# venv_stamp REQFILE [POST_FN]: what the venv was built from (requirements, post-install step, python, installer).
venv_stamp() {
	local req="$1" post="${2:-}"
	{
		cat "$req"
		printf 'uv %s compile-bytecode\n' "$FTK_UV_VERSION"
		[[ -n "$post" ]] && declare -f "$post"
		"$FTK_PYTHON" -c 'import sys; print(sys.version)'
	} | sha256sum | cut -d' ' -f1
}

# uv installs the venvs: it downloads and unpacks wheels in parallel and hard-links them from its cache, so the
# files the venvs share are stored once. Measured side by side on the shared 2-core machine, cold, serve.txt:
# pip 483 s (100 CPU-s), uv with .pyc 192 s (57 CPU-s). Pinned so set-up is reproducible; installed with pip.
FTK_UV_VERSION=0.13.9
FTK_UV="${FTK_UV:-$FTK_VENVS/uv/bin/uv}" # a uv of the pinned version elsewhere can stand in (the bats tests)
# The cache sits next to the venvs, on the same disk, so uv links instead of copying (`make clean` removes it).
export UV_CACHE_DIR="${UV_CACHE_DIR:-$FTK_VENVS/.uv-cache}" UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
# .pyc files at install, as pip writes them: where PYTHONDONTWRITEBYTECODE=1 (this machine, some CI images) Python
# never writes them itself, and each process then compiles torch and transformers again (measured: import
# transformers, torch took 57 s of wall time without them, 23 s with, on the same loaded machine)
export UV_COMPILE_BYTECODE=1

# ensure_uv: the pinned uv in $FTK_VENVS/uv; quiet when it is there. Installed by the python's own pip with
# --target (no venv to make first: that took 30 s of a 2-core machine under load), else by a venv's pip.
ensure_uv() {
	local dir="$FTK_VENVS/uv" pip=("$FTK_PYTHON" -m pip)
	[[ "$("$FTK_UV" --version 2>/dev/null)" == "uv $FTK_UV_VERSION"* ]] && return 0
	rm -rf "$dir"
	if ! "${pip[@]}" --version >/dev/null 2>&1; then
		"$FTK_PYTHON" -m venv "$dir/.venv" || die "uv: $FTK_PYTHON has neither pip nor venv; install python3-venv"
		pip=("$dir/.venv/bin/python" -m pip)
	fi
	"${pip[@]}" --quiet --disable-pip-version-check --no-cache-dir install --root-user-action=ignore \
		--target "$dir" "uv==$FTK_UV_VERSION" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2) ||
		die "uv: pip install uv==$FTK_UV_VERSION into $dir failed (see above); check the network to PyPI"
}

# pip_sources: uv flags for the package sources this machine's pip is configured with (pip.conf and PIP_*: index
# URLs, find-links, a constraints file), since uv reads no pip configuration. The environment wins over files,
# as in pip. Folders that are named but missing are left out. One flag per line.
pip_sources() {
	local line key value origin
	declare -A val=() from_env=()
	while IFS= read -r line; do
		[[ "$line" =~ ^([^.]*)\.([a-z-]+)=\'(.*)\'$ ]] || continue
		origin="${BASH_REMATCH[1]}" key="${BASH_REMATCH[2]//-/_}" value="${BASH_REMATCH[3]}"
		[[ -n "${from_env[$key]:-}" && "$origin" != :env: ]] && continue
		val[$key]="$value"
		[[ "$origin" == :env: ]] && from_env[$key]=1
	done < <("$FTK_PYTHON" -m pip config list 2>/dev/null || true)
	# pip's own behaviour: the best version across every source (uv's default stops at the first index that has it)
	printf '%s\n' --index-strategy unsafe-best-match
	for value in ${val[index_url]:-}; do printf '%s\n' --index-url "$value"; done
	for value in ${val[extra_index_url]:-}; do
		[[ "$value" == file://* && ! -d "${value#file://}" ]] || printf '%s\n' --extra-index-url "$value"
	done
	for value in ${val[find_links]:-}; do
		[[ "$value" == /* && ! -e "$value" ]] || printf '%s\n' --find-links "$value"
	done
	for value in ${val[constraint]:-}; do
		[[ ! -f "$value" ]] || printf '%s\n' --constraint "$value"
	done
}

# venv_pip VENV_DIR install|uninstall ARGS...: `uv pip` on that venv, quietly, from the project home, with the
# machine's pip sources for installs.
venv_pip() {
	local dir="$1" verb="$2" sources=()
	shift 2
	[[ "$verb" == install ]] && mapfile -t sources < <(pip_sources)
	(cd "$FTK_HOME" && "$FTK_UV" pip "$verb" --quiet --python "$dir/bin/python" "${sources[@]}" "$@")
}

# link_duplicates DIR: hard-link identical files across the venvs under DIR (uv links what it installs from its
# cache; this catches identical files of different wheels). Installers replace files, never edit them in place,
# so a later install in one venv does not change another. Skipped where util-linux' hardlink is missing.
link_duplicates() {
	local dir="$1" saved
	command -v hardlink >/dev/null 2>&1 || return 0
	saved="$(hardlink --ignore-time --minimum-size 100K "$dir" 2>/dev/null | awk -F': *' '/^Saved/ {print $2}')"
	[[ -z "$saved" ]] || info "venvs: identical files hard-linked across ${dir#"$FTK_HOME"/}, ${saved} saved"
}

# need_disk DIR MIB NAME: set-up's own space guard, since it runs before the toolkit venv (and its doctor
# checks) exist.
need_disk() {
	local probe="$1" free
	while [[ ! -e "$probe" && "$probe" != "/" ]]; do probe="$(dirname "$probe")"; done
	free=$(df -Pm "$probe" | awk 'NR==2 {print $4}')
	((free >= $2)) ||
		die "venv $3: not enough disk for its install: only ${free} MiB free on the disk of $1, need $2 MiB; free space there or set FTK_VENVS to a folder on a larger disk"
}

# ensure_venv NAME REQFILE POST_FN NEED_MB: build .venvs/NAME unless its stamp matches; quiet when nothing
# changed. NEED_MB is the free disk the install takes at its peak (downloads plus the installed venv): checked
# first, so a small disk stops the build with one line instead of ENOSPC half-way through pip.
ensure_venv() {
	local name="$1" req="$2" post="${3:-}" need="${4:-0}" dir stamp
	dir="$FTK_VENVS/$name"
	[[ -f "$req" ]] || die "requirements file $req for venv '$name' not found"
	stamp="$(venv_stamp "$req" "$post")"
	if [[ -f "$dir/.ftk-stamp" && "$(cat "$dir/.ftk-stamp")" == "$stamp" ]]; then
		return 0
	fi
	step "venv $name: installing ${req#"$FTK_HOME"/} into ${dir#"$FTK_HOME"/}"
	rm -rf "$dir"
	need_disk "$FTK_VENVS" "$need" "$name"
	ensure_uv
	# no pip inside: uv installs into it (`.venvs/uv/bin/uv pip install --python .venvs/NAME/bin/python ...`)
	"$FTK_PYTHON" -m venv --without-pip "$dir"
	venv_pip "$dir" install -r "$req" ||
		die "venv $name: uv pip install -r $req failed (see the output above); fix the pin and run make setup again"
	if [[ -n "$post" ]]; then
		"$post" "$dir" || die "venv $name: post-install step $post failed"
	fi
	printf '%s\n' "$stamp" >"$dir/.ftk-stamp"
	# FTK_LINK_LATER=1: venvs are being installed side by side; scripts/setup.sh links once they are all done
	[[ "${FTK_LINK_LATER:-0}" == 1 ]] || link_duplicates "$FTK_VENVS"
	ok "venv $name ready"
}
