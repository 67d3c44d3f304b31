#!/usr/bin/env bats
# scripts/gateway.sh, scripts/monitor.sh and scripts/release.sh: argument handling and what runs without ftk (the
# nginx image's --exec-rendered, --reload-rendered). Rendering and the processes themselves:
# tests/unit/test_gateway_*.py, tests/integration; release.sh for real: tests/compose.

load helpers/lib

setup() {
	lib_setup
}

@test "gateway.sh and monitor.sh: --help says what each mode does; unknown or extra arguments exit 2" {
	local script
	for script in gateway monitor; do
		run "$FTK_REPO/scripts/$script.sh" --help
		[ "$status" -eq 0 ]
		[[ "$output" == *"--render-only"* && "$output" == *"ftk run $script"* ]]
		run "$FTK_REPO/scripts/$script.sh" --bogus
		[ "$status" -eq 2 ]
		[ "$output" = "[error] unknown option '--bogus'; see scripts/$script.sh --help" ]
		run "$FTK_REPO/scripts/$script.sh" --stop extra
		[ "$status" -eq 2 ]
		[ "$output" = "[error] unexpected argument 'extra'; see scripts/$script.sh --help" ]
	done
}

@test "gateway.sh --exec-rendered: needs the prefix, and a rendered nginx.conf in it (no ftk is run)" {
	run "$FTK_REPO/scripts/gateway.sh" --exec-rendered
	[ "$status" -eq 2 ]
	[[ "$output" == *"--exec-rendered needs one argument"* ]]
	run env PATH=/usr/bin:/bin "$FTK_REPO/scripts/gateway.sh" --exec-rendered "$BATS_TEST_TMPDIR/gw"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$BATS_TEST_TMPDIR/gw/conf/nginx.conf does not exist; render it first (ftk run gateway --render-only"* ]]
}

@test "gateway.sh --exec-rendered: a configuration nginx -t refuses is not started, nginx's message shown" {
	command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || {
		echo "nginx is missing: run make setup (scripts/setup.sh debian)" >&2
		return 1
	}
	mkdir -p "$BATS_TEST_TMPDIR/gw/conf" "$BATS_TEST_TMPDIR/gw/logs"
	printf 'events {}\nhttp { listen_nowhere; }\n' >"$BATS_TEST_TMPDIR/gw/conf/nginx.conf"
	run "$FTK_REPO/scripts/gateway.sh" --exec-rendered "$BATS_TEST_TMPDIR/gw/"
	[ "$status" -eq 1 ]
	[[ "$output" == *"listen_nowhere"* ]]
	[[ "$output" == *"[error] nginx -t refused $BATS_TEST_TMPDIR/gw/conf/nginx.conf (see above)"* ]]
}

@test "gateway.sh --reload-rendered: needs the prefix, and a running nginx there (no ftk is run)" {
	run "$FTK_REPO/scripts/gateway.sh" --reload-rendered
	[ "$status" -eq 2 ]
	[[ "$output" == *"--reload-rendered needs one argument"* ]]
	mkdir -p "$BATS_TEST_TMPDIR/gw"
	echo 999999999 >"$BATS_TEST_TMPDIR/gw/nginx.pid"
	run env PATH=/usr/bin:/bin "$FTK_REPO/scripts/gateway.sh" --reload-rendered "$BATS_TEST_TMPDIR/gw/"
	[ "$status" -eq 1 ]
	[ "$output" = "[error] no gateway runs from $BATS_TEST_TMPDIR/gw (no live pid in nginx.pid); start it first" ]
}

@test "release.sh: --help says how a promote goes through compose; bad usage names the fix and runs nothing" {
	run "$FTK_REPO/scripts/release.sh" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"promote RUN_ID"* && "$output" == *"rollback"* && "$output" == *"settle"* ]]
	[[ "$output" == *"GPU_MEMORY_UTILIZATION"* && "$output" == *"SERVE_MODEL_PATH=release"* ]]
	# no docker on PATH: any of these reaching docker would fail differently
	run env PATH=/usr/bin:/bin "$FTK_REPO/scripts/release.sh" promote
	[ "$status" -eq 2 ]
	[ "$output" = "[error] promote needs one RUN_ID (a folder of models/merged): scripts/release.sh promote RUN_ID" ]
	run "$FTK_REPO/scripts/release.sh" promote v1 v2
	[ "$status" -eq 2 ]
	run "$FTK_REPO/scripts/release.sh" deploy v1
	[ "$status" -eq 2 ]
	[ "$output" = "[error] unknown command 'deploy'; use list, promote RUN_ID, rollback or settle (scripts/release.sh --help)" ]
	run "$FTK_REPO/scripts/release.sh"
	[ "$status" -eq 2 ]
	[[ "$output" == *"no command; use list, promote RUN_ID, rollback or settle"* ]]
	run "$FTK_REPO/scripts/release.sh" rollback now
	[ "$status" -eq 2 ]
	[ "$output" = "[error] rollback takes no argument; see scripts/release.sh --help" ]
}
