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
# that some machines' pip config names but do not have.
venv_pip() {
	local dir="$1"
	shift
	(cd "$FTK_HOME" && "$dir/bin/pip" --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2))
}

# ensure_venv NAME REQFILE [POST_FN]: build .venvs/NAME unless its stamp matches; quiet when nothing changed.
ensure_venv() {
	local name="$1" req="$2" post="${3:-}" dir stamp
	dir="$FTK_VENVS/$name"
	[[ -f "$req" ]] || die "requirements file $req for venv '$name' not found"
	stamp="$(venv_stamp "$req" "$post")"
	if [[ -f "$dir/.ftk-stamp" && "$(cat "$dir/.ftk-stamp")" == "$stamp" ]]; then
		return 0
	fi
	step "venv $name: installing ${req#"$FTK_HOME"/} into ${dir#"$FTK_HOME"/}"
	rm -rf "$dir"
	"$FTK_PYTHON" -m venv "$dir"
	venv_pip "$dir" install -r "$req" ||
		die "venv $name: pip install -r $req failed (see the pip output above); fix the pin and run make setup again"
	if [[ -n "$post" ]]; then
		"$post" "$dir" || die "venv $name: post-install step $post failed"
	fi
	printf '%s\n' "$stamp" >"$dir/.ftk-stamp"
	ok "venv $name ready"
}
