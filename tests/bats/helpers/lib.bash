#!/usr/bin/env bash
# Shared by the bats tests of scripts/lib: each test gets a sandbox FTK_HOME, and every library call runs in a
# fresh bash (the library sets `set -Eeuo pipefail` and `die` exits, which must not touch bats itself).

FTK_REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
export FTK_REPO

lib_setup() {
	export FTK_HOME="$BATS_TEST_TMPDIR/home"
	mkdir -p "$FTK_HOME"
	export NO_COLOR=1
	unset CUDA_VISIBLE_DEVICES ALLOW_CPU FTK_ENV_FILE FTK_VENVS
}

# lib 'SHELL CODE': run code after sourcing scripts/lib/common.sh, capturing
# status and output (stderr included) the bats way.
lib() {
	run bash -c "source \"\$FTK_REPO/scripts/lib/common.sh\"; $1"
}

# one_line: the output is exactly one line (each failing check prints one line naming the value and the fix).
# shellcheck disable=SC2154 # lines and output are set by bats' `run`
one_line() {
	[[ "${#lines[@]}" -eq 1 ]] || {
		printf 'expected one line, got %d:\n%s\n' "${#lines[@]}" "$output" >&2
		return 1
	}
}

# fake_nvidia_smi N: an nvidia-smi on PATH that lists N GPUs like `nvidia-smi -L`.
fake_nvidia_smi() {
	local bin="$BATS_TEST_TMPDIR/bin" i
	mkdir -p "$bin"
	{
		printf '#!/bin/sh\n'
		for ((i = 0; i < $1; i++)); do
			printf "echo 'GPU %d: NVIDIA Fake (UUID: GPU-%d)'\n" "$i" "$i"
		done
	} >"$bin/nvidia-smi"
	chmod +x "$bin/nvidia-smi"
	export PATH="$bin:$PATH"
}
