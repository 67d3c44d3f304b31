#!/usr/bin/env bats
# scripts/lib/common.sh: logging (NO_COLOR), die, load_env (env wins, literal values), paths and helpers.

bats_require_minimum_version 1.5.0
load helpers/lib

setup() {
	lib_setup
}

# --- log / die ---------------------------------------------------------------------------------------------

@test "log: one line on stderr, nothing on stdout" {
	run --separate-stderr bash -c 'source "$FTK_REPO/scripts/lib/common.sh"; info "hello world"; warn w; ok o; step s'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "[info] hello world" ]
	[ "${stderr_lines[1]}" = "[warn] w" ]
	[ "${stderr_lines[2]}" = "[ok] o" ]
	[ "${stderr_lines[3]}" = "[step] s" ]
}

# Run a command with stderr on a pseudo-terminal (util-linux `script`), where colour is allowed.
on_tty() {
	run script -qec "bash -c 'source \"$FTK_REPO/scripts/lib/common.sh\"; $1'" /dev/null
}

@test "log: colour on a terminal, none with NO_COLOR" {
	unset NO_COLOR
	on_tty 'log error boom'
	[[ "$output" == *$'\e[31m[error]\e[0m boom'* ]]
	NO_COLOR=1 on_tty 'log error boom'
	[[ "$output" != *$'\e['* ]]
	[[ "$output" == *"[error] boom"* ]]
}

@test "log: no colour when stderr is not a terminal" {
	unset NO_COLOR
	lib 'log error boom'
	[ "$output" = "[error] boom" ]
}

@test "die: one error line, exit 1 by default or the code given" {
	lib 'die "it broke; do this"; echo never'
	[ "$status" -eq 1 ]
	[ "$output" = "[error] it broke; do this" ]
	lib 'die "usage" 2'
	[ "$status" -eq 2 ]
}

# --- load_env ----------------------------------------------------------------------------------------------

write_env() {
	printf '%s\n' "$@" >"$BATS_TEST_TMPDIR/test.env"
}

@test "load_env: the environment wins over the file" {
	write_env "FTK_A=from-file" "FTK_B=from-file"
	FTK_A=from-env lib "load_env '$BATS_TEST_TMPDIR/test.env'; echo \"\$FTK_A \$FTK_B\""
	[ "$status" -eq 0 ]
	[ "$output" = "from-env from-file" ]
}

@test "load_env: quotes, comments, blank lines, export prefix, spaces around =" {
	write_env "# a comment" "" "  # indented comment" 'FTK_D="double quoted # not a comment"' \
		"FTK_S='single quoted'" "FTK_C=value # trailing comment" "export FTK_E=exported" "FTK_EMPTY=" \
		"FTK_SP = spaced" 'FTK_EQ=a=b=c'
	lib "load_env '$BATS_TEST_TMPDIR/test.env'; printf '%s|' \"\$FTK_D\" \"\$FTK_S\" \"\$FTK_C\" \"\$FTK_E\" \"\$FTK_EMPTY\" \"\$FTK_SP\" \"\$FTK_EQ\""
	[ "$status" -eq 0 ]
	[ "$output" = "double quoted # not a comment|single quoted|value|exported||spaced|a=b=c|" ]
}

@test "load_env: CRLF line endings do not leak a carriage return into values" {
	printf 'FTK_W=windows\r\n' >"$BATS_TEST_TMPDIR/test.env"
	lib "load_env '$BATS_TEST_TMPDIR/test.env'; printf '[%s]' \"\$FTK_W\""
	[ "$output" = "[windows]" ]
}

@test "load_env: values are never executed" {
	write_env 'FTK_X=$(touch '"$BATS_TEST_TMPDIR"'/pwned)' 'FTK_Y=`touch '"$BATS_TEST_TMPDIR"'/pwned2`' 'FTK_Z="${HOME}"'
	lib "load_env '$BATS_TEST_TMPDIR/test.env'; printf '%s\n' \"\$FTK_X\" \"\$FTK_Z\""
	[ "$status" -eq 0 ]
	[ ! -e "$BATS_TEST_TMPDIR/pwned" ]
	[ ! -e "$BATS_TEST_TMPDIR/pwned2" ]
	[ "${lines[0]}" = "\$(touch $BATS_TEST_TMPDIR/pwned)" ]
	[ "${lines[1]}" = '${HOME}' ]
}

@test "load_env: a line that is not KEY=VALUE names file:line and the fix" {
	write_env "FTK_OK=1" "# fine" "this is not an assignment"
	lib "load_env '$BATS_TEST_TMPDIR/test.env'; echo after"
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] $BATS_TEST_TMPDIR/test.env:3: 'this is not an assignment' is not KEY=VALUE; fix or remove that line" ]
}

@test "load_env: a bad key name names file:line" {
	write_env "1BAD=x"
	lib "load_env '$BATS_TEST_TMPDIR/test.env'"
	[ "$status" -eq 1 ]
	[ "$output" = "[error] $BATS_TEST_TMPDIR/test.env:1: '1BAD' is not a valid key name; use letters, digits and _" ]
}

@test "load_env: defaults to FTK_ENV_FILE, then FTK_HOME/.env; a missing file is fine" {
	printf 'FTK_H=home\n' >"$FTK_HOME/.env"
	lib 'load_env; echo "$FTK_H"'
	[ "$output" = "home" ]
	write_env "FTK_H=envfile"
	FTK_ENV_FILE="$BATS_TEST_TMPDIR/test.env" lib 'load_env; echo "$FTK_H"'
	[ "$output" = "envfile" ]
	FTK_ENV_FILE="$BATS_TEST_TMPDIR/none.env" lib 'load_env; echo "ok ${FTK_H:-unset}"'
	[ "$status" -eq 0 ]
	[ "$output" = "ok unset" ]
}

# --- paths and helpers -------------------------------------------------------------------------------------

@test "ftk_path: relative paths are taken from FTK_HOME, absolute ones kept" {
	lib 'ftk_path models/x; ftk_path ./runs; ftk_path /abs/p'
	[ "${lines[0]}" = "$FTK_HOME/models/x" ]
	[ "${lines[1]}" = "$FTK_HOME/runs" ]
	[ "${lines[2]}" = "/abs/p" ]
}

@test "venv_tool: the venv's tool, else PATH, else a make setup message" {
	mkdir -p "$BATS_TEST_TMPDIR/venvs/toolkit/bin"
	printf '#!/bin/sh\n' >"$BATS_TEST_TMPDIR/venvs/toolkit/bin/mytool"
	chmod +x "$BATS_TEST_TMPDIR/venvs/toolkit/bin/mytool"
	FTK_VENVS="$BATS_TEST_TMPDIR/venvs" lib 'venv_tool toolkit mytool'
	[ "$output" = "$BATS_TEST_TMPDIR/venvs/toolkit/bin/mytool" ]
	FTK_VENVS="$BATS_TEST_TMPDIR/venvs" lib 'venv_tool train bash'
	[ "$output" = "$(command -v bash)" ]
	FTK_VENVS="$BATS_TEST_TMPDIR/venvs" lib 'venv_tool train no-such-tool-ftk'
	[ "$status" -eq 1 ]
	[ "$output" = "[error] no-such-tool-ftk not found in $BATS_TEST_TMPDIR/venvs/train nor on PATH; run: make setup" ]
}

@test "show_help: the leading comment block of a script" {
	printf '#!/usr/bin/env bash\n# Usage: x.sh\n#\n# Does x.\nset -e\n# not help\n' >"$BATS_TEST_TMPDIR/x.sh"
	lib "show_help '$BATS_TEST_TMPDIR/x.sh'"
	[ "$output" = $'Usage: x.sh\n\nDoes x.' ]
}

@test "run_logged: streams, appends to the log and returns the command's status" {
	lib "run_logged '$BATS_TEST_TMPDIR/logs/a.log' bash -c 'echo out; echo err >&2; exit 3'"
	[ "$status" -eq 3 ]
	[[ "$output" == *"out"* ]]
	grep -qx out "$BATS_TEST_TMPDIR/logs/a.log"
	grep -qx err "$BATS_TEST_TMPDIR/logs/a.log"
}

@test "pidfile_pid: the pid of a live process; nothing for a stale, garbage or missing pid file" {
	sleep 30 &
	local live=$!
	printf '%s\n' "$live" >"$BATS_TEST_TMPDIR/live.pid"
	lib "pidfile_pid '$BATS_TEST_TMPDIR/live.pid'"
	kill "$live"
	[ "$status" -eq 0 ]
	[ "$output" = "$live" ]
	wait "$live" || true
	lib "pidfile_pid '$BATS_TEST_TMPDIR/live.pid'"
	[ "$status" -eq 1 ] && [ -z "$output" ]
	printf 'not-a-pid\n' >"$BATS_TEST_TMPDIR/bad.pid"
	lib "pidfile_pid '$BATS_TEST_TMPDIR/bad.pid'"
	[ "$status" -eq 1 ]
	lib "pidfile_pid '$BATS_TEST_TMPDIR/none.pid'"
	[ "$status" -eq 1 ]
}

# --- require_cmd -------------------------------------------------------------------------------------------

@test "require_cmd: a command on PATH passes silently" {
	lib 'require_cmd bash'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "require_cmd: a missing command names it and says how to install" {
	lib 'require_cmd no-such-tool-ftk'
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] command 'no-such-tool-ftk' not found; install it (make setup installs what the project needs)" ]
}

@test "require_cmd: a custom hint replaces the default fix" {
	lib 'require_cmd no-such-tool-ftk "apt-get install jq"'
	[ "$status" -eq 1 ]
	[ "$output" = "[error] command 'no-such-tool-ftk' not found; apt-get install jq" ]
}
