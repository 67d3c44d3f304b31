#!/usr/bin/env bash
# Usage: tools/gpu/device-venvs.sh DIR --train SITE --serve SITE --ftk SITE
#
# On a GPU machine where the stacks were installed with `pip install --target` (the lent H200: one target per
# stack, their pins differ) instead of venvs: writes DIR/toolkit, DIR/train and DIR/serve shaped like the venvs
# of make setup (bin/python, bin/ftk, bin/llamafactory-cli: small wrappers that set PYTHONPATH), so that
# FTK_VENVS=DIR makes scripts/*.sh and ftk find them. The machine's python3 (with its torch) runs them all.
#   --train SITE   LLaMA-Factory and the train pins     --serve SITE   vLLM and its pins
#   --ftk SITE     ftk's own libraries (tools/gpu/ftk-deps-wheels.txt)
set -Eeuo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/common.sh"

# wrapper FILE PYTHONPATH [EXTRA_ENV]: a python that sees PYTHONPATH first.
wrapper() {
	local file="$1" pypath="$2" extra="${3:-}"
	mkdir -p "$(dirname "$file")"
	# shellcheck disable=SC2016 # ${PYTHONPATH...} expands when the wrapper runs
	printf '#!/usr/bin/env bash\n%sPYTHONPATH=%q${PYTHONPATH:+:$PYTHONPATH} exec python3 "$@"\n' "$extra" "$pypath" >"$file"
	chmod +x "$file"
}

# tool FILE PYTHON CODE: a console script run by PYTHON.
tool() {
	printf '#!/usr/bin/env bash\nexec %q -c %q "$@"\n' "$2" "$3" >"$1"
	chmod +x "$1"
}

main() {
	case "${1:-}" in "" | -h | --help)
		show_help "$0"
		return 0
		;;
	esac
	local dir="$1" train="" serve="" ftk="" src="$FTK_HOME/toolkit/src"
	shift
	while (($#)); do
		[[ $# -ge 2 ]] || die "$1 needs a folder" 2
		case "$1" in
		--train) train="$2" ;;
		--serve) serve="$2" ;;
		--ftk) ftk="$2" ;;
		*) die "unknown option '$1'; see tools/gpu/device-venvs.sh --help" 2 ;;
		esac
		shift 2
	done
	[[ -d "$train" && -d "$serve" && -d "$ftk" ]] || die "give --train, --serve and --ftk folders that exist" 2
	step "venv-shaped wrappers in $dir (train: $train, serve: $serve, ftk: $ftk)"
	wrapper "$dir/toolkit/bin/python" "$src:$ftk:$serve"
	wrapper "$dir/train/bin/python" "$src:$train:$ftk"
	wrapper "$dir/serve/bin/python" "$serve:$ftk:$src" "export VLLM_USE_FLASHINFER_SAMPLER=\${VLLM_USE_FLASHINFER_SAMPLER:-0}"$'\n'
	local v
	for v in toolkit train serve; do
		tool "$dir/$v/bin/ftk" "$dir/$v/bin/python" 'import sys; from ftk.cli import main; sys.argv[0] = "ftk"; main()'
	done
	tool "$dir/train/bin/llamafactory-cli" "$dir/train/bin/python" \
		'import sys; from llamafactory.cli import main; sys.argv[0] = "llamafactory-cli"; sys.exit(main())'
	ok "export FTK_VENVS=$dir"
}

main "$@"
