#!/usr/bin/env bash
# Usage: scripts/reliability.sh [-k EXPRESSION]
#
# The reliability suite (`make reliability`): every test in tests/reliability and the kill-and-resume tests of
# training and merging (tests/integration), the soak tests included
# (FTK_SOAK=1; `make test` runs only the quick ones), each case written as a row of the ledger
# runs/reliability/ledger.jsonl. Then prints a table per area (input, fault, load, security) and one line:
#   inputs tried / clear errors / tracebacks / files damaged, faults injected / recovered,
#   requests sent / completed / cleanly refused / lost
# Exit status non-zero when a test failed or the ledger holds a traceback, a damaged file, an unrecovered
# fault or a lost request. -k runs only the tests whose names match (pytest's -k). The soak load test reads
# FTK_SOAK_CLIENTS (default 300) and FTK_SOAK_SECONDS (default 240).
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# Faults whose tests live with their stage: training killed and resumed, a merge killed mid-write.
FAULT_TESTS=(
	tests/integration/test_train_text.py::test_interrupted_run_resumes_from_its_checkpoint
	tests/integration/test_merge_text.py::test_interrupted_merge_keeps_the_old_export
)

main() {
	local select=()
	while (($#)); do
		case "$1" in
		-h | --help)
			show_help "$0"
			return 0
			;;
		-k)
			[[ $# -ge 2 ]] || die "-k needs a test name expression" 2
			select=(-k "$2")
			shift 2
			;;
		*) die "unknown option '$1'; see scripts/reliability.sh --help" 2 ;;
		esac
	done
	local python ledger rc=0
	python="$(venv_tool toolkit python)"
	ledger="$FTK_HOME/runs/reliability/ledger.jsonl"
	mkdir -p "$(dirname "$ledger")"
	: >"$ledger"
	step "reliability: pytest tests/reliability with the soak tests (FTK_SOAK=1); ledger $ledger"
	(cd "$FTK_HOME" && FTK_SOAK=1 FTK_RELIABILITY_LEDGER="$ledger" "$python" -m pytest tests/reliability "${FAULT_TESTS[@]}" "${select[@]}") || rc=$?
	step "reliability: summary"
	"$python" "$FTK_HOME/tests/reliability_report.py" "$ledger" || rc=1
	return "$rc"
}

main "$@"
