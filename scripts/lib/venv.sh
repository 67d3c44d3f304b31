#!/usr/bin/env bash
# Virtual environments under .venvs/, made from a pinned requirements file and re-made only when it changes.
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

FTK_VENVS="${FTK_VENVS:-$FTK_HOME/.venvs}"
FTK_PYTHON="${FTK_PYTHON:-python3}"

# venv_stamp REQFILE [POST_FN]: what the venv was built from (requirements, post-install step, python).
venv_stamp() {
	local req="$1" post="${2:-}"
	{
		cat "$req"
		[[ -n "$post" ]] && declare -f "$post"
		"$FTK_PYTHON" -c 'import sys; print(sys.version)'
	} | sha256sum | cut -d' ' -f1
}

# venv_pip VENV_DIR ARGS...: quiet pip from the project home, without the warnings about index folders
# that some machines' pip config names but do not have. No pip cache: the CUDA wheels would sit on the disk
# twice (cache and venv), and a CI machine has run out of disk that way.
venv_pip() {
	local dir="$1"
	shift
	(cd "$FTK_HOME" && "$dir/bin/pip" --quiet --disable-pip-version-check --no-cache-dir "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2))
}

# link_duplicates DIR: hard-link identical files across the venvs under DIR (the same torch, CUDA and vLLM
# wheels land in several venvs; about 4 GB saved). pip replaces files, never edits them in place, so a
# later install in one venv does not change another. Skipped where util-linux' hardlink is missing.
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
	"$FTK_PYTHON" -m venv "$dir"
	venv_pip "$dir" install -r "$req" ||
		die "venv $name: pip install -r $req failed (see the pip output above); fix the pin and run make setup again"
	if [[ -n "$post" ]]; then
		"$post" "$dir" || die "venv $name: post-install step $post failed"
	fi
	printf '%s\n' "$stamp" >"$dir/.ftk-stamp"
	link_duplicates "$FTK_VENVS"
	ok "venv $name ready"
}
