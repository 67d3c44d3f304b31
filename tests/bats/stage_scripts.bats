#!/usr/bin/env bats
# scripts/gateway.sh and scripts/monitor.sh: argument handling and what runs without ftk (the nginx image's
# --exec-rendered). Rendering and the processes themselves: tests/unit/test_gateway_*.py, tests/integration.

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
