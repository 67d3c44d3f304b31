#!/usr/bin/env bash
# Usage: scripts/bench.sh [NAME...] [-- BENCH_ARGS...]
#
# Runs the benchmarks in tools/bench/ (all of them, or the named ones) with the toolkit venv's python, each
# printing a table of figures with ratios measured side by side in one run. Output also goes to
# runs/bench/<name>.log. Arguments after `--` go to every named benchmark (each one's docstring lists its
# options), e.g. scripts/bench.sh dataset_validate -- --sizes 10000,100000.
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BENCH_DIR="$FTK_HOME/tools/bench"

# bench_names: the benchmarks, one name a line (tools/bench/<name>.py).
bench_names() {
	local file
	for file in "$BENCH_DIR"/[a-z]*.py; do
		basename "$file" .py
	done
}

main() {
	case "${1:-}" in -h | --help)
		show_help "$0"
		printf '\nbenchmarks: %s\n' "$(bench_names | paste -sd ' ')"
		return 0
		;;
	esac
	local python names=() args=() name rc=0
	while (($#)); do
		if [[ "$1" == "--" ]]; then
			shift
			args=("$@")
			break
		fi
		names+=("$1")
		shift
	done
	python="$(venv_tool toolkit python)"
	if ((${#names[@]} == 0)); then
		((${#args[@]} == 0)) || die "arguments after -- need the benchmark they are for: scripts/bench.sh NAME -- ARGS" 2
		mapfile -t names < <(bench_names)
	fi
	for name in "${names[@]}"; do
		[[ -f "$BENCH_DIR/$name.py" ]] || die "no benchmark '$name' in tools/bench/ (scripts/bench.sh --help)" 2
		step "bench: $name"
		run_logged "$FTK_HOME/runs/bench/$name.log" "$python" "$BENCH_DIR/$name.py" "${args[@]}" || {
			warn "bench $name failed (log: runs/bench/$name.log)"
			rc=1
		}
	done
	return "$rc"
}

main "$@"
