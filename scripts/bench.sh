#!/usr/bin/env bash
# Usage: scripts/bench.sh [NAME...]
#
# Runs the benchmarks in toolkit/src/ftk/bench/ (all of them, or the named ones), each printing a table of
# figures with ratios measured side by side in one run. Output also goes to runs/bench/<name>.log.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

main() {
	case "${1:-}" in -h | --help)
		show_help "$0"
		return 0
		;;
	esac
	local python names=("$@") file name rc=0
	python="$(venv_tool toolkit python)"
	if ((${#names[@]} == 0)); then
		for file in "$FTK_HOME"/toolkit/src/ftk/bench/[a-z]*.py; do
			names+=("$(basename "$file" .py)")
		done
	fi
	for name in "${names[@]}"; do
		[[ -f "$FTK_HOME/toolkit/src/ftk/bench/$name.py" ]] || die "no benchmark '$name' in toolkit/src/ftk/bench/"
		step "bench: $name"
		run_logged "$FTK_HOME/runs/bench/$name.log" "$python" -m "ftk.bench.$name" || {
			warn "bench $name failed (log: runs/bench/$name.log)"
			rc=1
		}
	done
	return "$rc"
}

main "$@"
