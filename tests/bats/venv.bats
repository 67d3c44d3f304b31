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

@test "pip_sources: uv gets pip's sources, the environment winning over pip.conf, missing folders left out" {
	mkdir -p "$BATS_TEST_TMPDIR/wheels"
	printf 'torch<=9\n' >"$BATS_TEST_TMPDIR/c.txt"
	cat >"$BATS_TEST_TMPDIR/pip.conf" <<CONF
[global]
find-links = /nonexistent-wheels
extra-index-url = https://example.invalid/simple file:///nonexistent-index
constraint = $BATS_TEST_TMPDIR/c.txt
CONF
	venv "PIP_CONFIG_FILE='$BATS_TEST_TMPDIR/pip.conf' PIP_FIND_LINKS='$BATS_TEST_TMPDIR/wheels' pip_sources | paste -sd' '"
	[ "$status" -eq 0 ]
	[ "$output" = "--index-strategy unsafe-best-match --extra-index-url https://example.invalid/simple --find-links $BATS_TEST_TMPDIR/wheels --constraint $BATS_TEST_TMPDIR/c.txt" ]
}

@test "ensure_venv: builds once with uv, is silent while the requirements are unchanged, rebuilds when they change" {
	# a uv of the pinned version already on this machine saves installing one into the sandbox
	local uv
	for uv in "$FTK_REPO/.venvs/uv/bin/uv" "${FTK_TEST_UV:-}"; do
		[[ -x "$uv" ]] && export FTK_UV="$uv" && break
	done
	printf '# no packages: the venv itself is what is tested\n' >"$BATS_TEST_TMPDIR/req.txt"
	venv "ensure_venv tiny '$BATS_TEST_TMPDIR/req.txt' '' 1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"installing"*"venv tiny ready"* ]]
	[ -x "$FTK_VENVS/tiny/bin/python" ] && [ -s "$FTK_VENVS/tiny/.ftk-stamp" ]
	touch "$FTK_VENVS/tiny/marker"
	venv "ensure_venv tiny '$BATS_TEST_TMPDIR/req.txt' '' 1"
	[ "$status" -eq 0 ] && [ -z "$output" ] && [ -e "$FTK_VENVS/tiny/marker" ]
	printf '# changed\n' >>"$BATS_TEST_TMPDIR/req.txt"
	venv "ensure_venv tiny '$BATS_TEST_TMPDIR/req.txt' '' 1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"installing"* ]] && [ ! -e "$FTK_VENVS/tiny/marker" ]
}

@test "setup.sh: model, train and serve run side by side; a failed one is named and stops the set-up" {
	local d="$FTK_HOME/scripts/setup.d"
	mkdir -p "$d"
	# a stand-in uv of the pinned version (ensure_uv runs before the side-by-side steps start)
	printf '#!/bin/sh\necho "uv %s"\n' "$(bash -c "source '$FTK_REPO/scripts/lib/venv.sh'; echo \$FTK_UV_VERSION")" >"$BATS_TEST_TMPDIR/uv"
	chmod +x "$BATS_TEST_TMPDIR/uv"
	export FTK_UV="$BATS_TEST_TMPDIR/uv" M="$BATS_TEST_TMPDIR/marks"
	mkdir -p "$M"
	# train waits for serve's mark: it finishes only if both run at once
	echo 'setup_train() { for _ in $(seq 50); do [[ -e $M/serve ]] && { touch $M/train; return 0; }; sleep 0.1; done; return 1; }' >"$d/40-train.sh"
	echo 'setup_serve() { touch $M/serve; }' >"$d/50-serve.sh"
	echo 'setup_model() { return 3; }' >"$d/30-model.sh"
	echo 'setup_after() { touch $M/after; }' >"$d/60-after.sh"
	run "$FTK_REPO/scripts/setup.sh" model train serve after
	[ "$status" -ne 0 ]
	[[ "$output" == *"setup step(s) model failed"* ]]
	[ -e "$M/train" ] && [ -e "$M/serve" ] && [ ! -e "$M/after" ]
	echo 'setup_model() { :; }' >"$d/30-model.sh"
	run "$FTK_REPO/scripts/setup.sh" model train serve after
	[ "$status" -eq 0 ] && [ -e "$M/after" ]
}
