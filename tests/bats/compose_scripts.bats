#!/usr/bin/env bats
# The compose path's shell entrypoints: scripts/init.sh, scripts/images.sh, scripts/docker-engine.sh and the
# opt-in set-up step. Argument handling and refusals only; the compose tests (tests/compose) run them for real.

load helpers/lib

setup() {
	lib_setup
}

@test "setup.sh: the docker step runs only when named (make demo never installs an engine)" {
	mkdir -p "$FTK_HOME/scripts/setup.d"
	local name
	for name in 10-debian 20-toolkit 60-docker; do
		printf 'setup_%s() { echo "ran %s"; }\n' "${name#*-}" "${name#*-}" >"$FTK_HOME/scripts/setup.d/$name.sh"
	done
	run "$FTK_REPO/scripts/setup.sh"
	[ "$status" -eq 0 ]
	[ "$output" = $'ran debian\nran toolkit' ]
	run "$FTK_REPO/scripts/setup.sh" docker
	[ "$status" -eq 0 ]
	[ "$output" = "ran docker" ]
}

@test "init.sh: --help says what it does; an unknown argument is refused naming it" {
	run "$FTK_REPO/scripts/init.sh" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"docker compose run --rm init"* ]]
	run "$FTK_REPO/scripts/init.sh" --bogus
	[ "$status" -eq 2 ]
	[ "$output" = "[error] unknown argument '--bogus'; see scripts/init.sh --help" ]
}

@test "init.sh: no .env yet says to copy .env.example, and writes nothing" {
	cp -r "$FTK_REPO/scripts" "$FTK_HOME/"
	run env FTK_HOME="$FTK_HOME" "$FTK_HOME/scripts/init.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *".env does not exist; make it first: cp .env.example .env"* ]]
	[ ! -e "$FTK_HOME/runs" ]
}

@test "images.sh: unknown options and missing build inputs are refused naming the flag" {
	run "$FTK_REPO/scripts/images.sh" --bogus
	[ "$status" -eq 2 ]
	[[ "$output" == *"unknown option '--bogus'"* ]]
	run "$FTK_REPO/scripts/images.sh" --extra-ca "$BATS_TEST_TMPDIR/none.crt"
	[ "$status" -eq 2 ]
	[[ "$output" == *"--extra-ca needs an existing certificate file"* ]]
	mkdir -p "$BATS_TEST_TMPDIR/empty"
	run "$FTK_REPO/scripts/images.sh" --wheelhouse "$BATS_TEST_TMPDIR/empty"
	[ "$status" -eq 2 ]
	[[ "$output" == *"holds no .whl file"* ]]
}

@test "docker-engine.sh: stop without a pid file of ours stops nothing; bad usage exits 2" {
	run env FTK_HOME="$FTK_HOME" "$FTK_REPO/scripts/docker-engine.sh" stop
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	mkdir -p "$FTK_HOME/.cache/docker"
	echo 999999999 >"$FTK_HOME/.cache/docker/dockerd.pid"
	run env FTK_HOME="$FTK_HOME" "$FTK_REPO/scripts/docker-engine.sh" stop
	[ "$status" -eq 0 ]
	[ ! -e "$FTK_HOME/.cache/docker/dockerd.pid" ]
	run "$FTK_REPO/scripts/docker-engine.sh" restart
	[ "$status" -eq 2 ]
}
