#!/usr/bin/env bash
# Usage: scripts/test.sh [lint|unit|shell|all] [PYTEST_ARGS...]
#
# The project's test command (`make test` runs it after `make setup`):
#   lint   ruff, shellcheck and shfmt on every script, hadolint on every Dockerfile
#   unit   pytest on tests/ (real LLaMA-Factory, vLLM, nginx and Prometheus on 127.0.0.1 where a test needs them)
#   shell  bats on tests/bats, closing with an "N passed, N failed" line
#   all    the three in order (default); every part runs, the exit code is non-zero if any failed
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BIN="${FTK_VENVS:-$FTK_HOME/.venvs}/toolkit/bin"

shell_files() {
	git -C "$FTK_HOME" ls-files --cached --others --exclude-standard -- '*.sh' '*.bash' '*.bats' .ci/run |
		while read -r f; do [[ -f "$FTK_HOME/$f" ]] && printf '%s\n' "$FTK_HOME/$f"; done
}

run_lint() {
	local rc=0 files dockerfiles
	step "lint: ruff"
	"$BIN/ruff" check "$FTK_HOME/toolkit" "$FTK_HOME/tests" "$FTK_HOME/tools" || rc=1
	"$BIN/ruff" format --check --quiet "$FTK_HOME/toolkit" "$FTK_HOME/tests" "$FTK_HOME/tools" || {
		warn "ruff format: run $BIN/ruff format toolkit tests tools"
		rc=1
	}
	mapfile -t files < <(shell_files | grep -v '\.bats$')
	step "lint: shellcheck (${#files[@]} scripts)"
	"$BIN/shellcheck" -x -P "$FTK_HOME" "${files[@]}" || rc=1
	step "lint: shfmt"
	"$BIN/shfmt" -d "${files[@]}" || rc=1
	mapfile -t dockerfiles < <(find "$FTK_HOME/docker" -name Dockerfile -type f 2>/dev/null)
	if ((${#dockerfiles[@]})); then
		step "lint: hadolint (${#dockerfiles[@]} Dockerfiles)"
		"$BIN/hadolint" "${dockerfiles[@]}" || rc=1
	fi
	((rc == 0)) && ok "lint: clean"
	return "$rc"
}

run_unit() {
	step "pytest"
	local rc=0
	(cd "$FTK_HOME" && "$BIN/python" -m pytest --durations=30 "$@") || rc=$?
	# exit 5 means no test was collected: a failure for us, never a silent pass
	return "$rc"
}

run_shell() {
	step "bats"
	local out rc=0 passed failed
	out="$(mktemp)"
	# the venv's bin first for bats, shellcheck and shfmt; set-up's python stays the machine's (a venv made by uv
	# has no pip, and set-up reads pip's sources through it)
	FTK_PYTHON="${FTK_PYTHON:-$(command -v python3)}" PATH="$BIN:$PATH" "$BIN/bats" --tap -r "$FTK_HOME/tests/bats" |
		tee "$out" || rc=$?
	passed=$(grep -c '^ok ' "$out" || true)
	failed=$(grep -c '^not ok ' "$out" || true)
	rm -f "$out"
	printf 'bats: %d passed, %d failed\n' "$passed" "$failed"
	((rc == 0 && failed == 0 && passed > 0))
}

main() {
	local what="${1:-all}"
	case "$what" in -h | --help)
		show_help "$0"
		return 0
		;;
	esac
	[[ $# -gt 0 ]] && shift
	case "$what" in
	lint) run_lint ;;
	unit) run_unit "$@" ;;
	shell) run_shell ;;
	all)
		local rc=0
		run_lint || rc=1
		run_shell || rc=1
		run_unit "$@" || rc=1
		return "$rc"
		;;
	*) die "unknown part '$what'; use lint, unit, shell or all" 2 ;;
	esac
}

main "$@"
