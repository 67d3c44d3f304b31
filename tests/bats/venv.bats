#!/usr/bin/env bats
# scripts/lib/venv.sh: a venv refuses to start on a disk too small for it, and identical files across venvs
# end up stored once.

bats_require_minimum_version 1.5.0
load helpers/lib

setup() {
	lib_setup
	export FTK_VENVS="$BATS_TEST_TMPDIR/venvs"
}

venv() {
	run bash -c "source \"\$FTK_REPO/scripts/lib/venv.sh\"; $1"
}

@test "ensure_venv: a disk too small stops before pip, naming the disk, the need and FTK_VENVS" {
	printf 'six==1.16.0\n' >"$BATS_TEST_TMPDIR/req.txt"
	venv "ensure_venv tiny '$BATS_TEST_TMPDIR/req.txt' '' 999999999"
	[ "$status" -ne 0 ]
	[[ "$output" == *"need 999999999 MiB"* ]]
	[[ "$output" == *"venv tiny: not enough disk"*"FTK_VENVS"* ]]
	[[ "$output" != *"installing"*"pip install"* ]]
	[ ! -e "$FTK_VENVS/tiny/bin/pip" ]
}

@test "link_duplicates: identical files across venvs share one inode, different ones do not" {
	command -v hardlink >/dev/null || skip "util-linux hardlink not installed"
	mkdir -p "$FTK_VENVS/a/lib" "$FTK_VENVS/b/lib"
	head -c 300000 /dev/urandom >"$FTK_VENVS/a/lib/big.so"
	cp "$FTK_VENVS/a/lib/big.so" "$FTK_VENVS/b/lib/big.so"
	head -c 300000 /dev/urandom >"$FTK_VENVS/a/lib/other.so"
	head -c 300000 /dev/urandom >"$FTK_VENVS/b/lib/other.so"
	venv "link_duplicates '$FTK_VENVS'"
	[ "$status" -eq 0 ]
	[[ "$output" == *"hard-linked"*"saved"* ]]
	[ "$(stat -c %i "$FTK_VENVS/a/lib/big.so")" = "$(stat -c %i "$FTK_VENVS/b/lib/big.so")" ]
	[ "$(stat -c %i "$FTK_VENVS/a/lib/other.so")" != "$(stat -c %i "$FTK_VENVS/b/lib/other.so")" ]
	cmp "$FTK_VENVS/a/lib/big.so" "$FTK_VENVS/b/lib/big.so"
}
