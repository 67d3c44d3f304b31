#!/usr/bin/env bash
# Shared by every entrypoint in scripts/: logging, errors, .env loading, paths.
# Source it; it defines functions only (plus FTK_HOME), and changes no shell options of the caller
# except those every entrypoint wants anyway (set -Eeuo pipefail).

set -Eeuo pipefail

FTK_HOME="${FTK_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export FTK_HOME

_ftk_color() {
	[[ -z "${NO_COLOR:-}" && -t 2 ]]
}

# log LEVEL MESSAGE...: one line on stderr, coloured unless NO_COLOR is set or stderr is not a terminal.
log() {
	local level="$1" color="" reset=""
	shift
	if _ftk_color; then
		case "$level" in
		info) color=$'\e[36m' ;;
		ok) color=$'\e[32m' ;;
		warn) color=$'\e[33m' ;;
		error) color=$'\e[31m' ;;
		step) color=$'\e[1m' ;;
		esac
		reset=$'\e[0m'
	fi
	printf '%s[%s]%s %s\n' "$color" "$level" "$reset" "$*" >&2
}

info() { log info "$@"; }
ok() { log ok "$@"; }
warn() { log warn "$@"; }
step() { log step "$@"; }

# die MESSAGE [CODE]: print one error line and exit (default code 1).
die() {
	log error "$1"
	exit "${2:-1}"
}

# load_env [FILE]: export KEY=VALUE lines of an env file without overriding variables already set,
# so the environment wins over .env. Values are taken literally (no command substitution is ever run).
load_env() {
	local file="${1:-${FTK_ENV_FILE:-$FTK_HOME/.env}}" line key value n=0
	[[ -f "$file" ]] || return 0
	while IFS= read -r line || [[ -n "$line" ]]; do
		n=$((n + 1))
		line="${line#"${line%%[![:space:]]*}"}"
		[[ -z "$line" || "$line" == \#* ]] && continue
		line="${line#export }"
		if [[ "$line" != *=* ]]; then
			die "$file:$n: '$line' is not KEY=VALUE; fix or remove that line"
		fi
		key="${line%%=*}"
		value="${line#*=}"
		key="${key%"${key##*[![:space:]]}"}"
		value="${value#"${value%%[![:space:]]*}"}"
		if [[ ! "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
			die "$file:$n: '$key' is not a valid key name; use letters, digits and _"
		fi
		if [[ "$value" =~ ^\"(.*)\"[[:space:]]*(#.*)?$ || "$value" =~ ^\'(.*)\'[[:space:]]*(#.*)?$ ]]; then
			value="${BASH_REMATCH[1]}"
		else
			value="${value%%[[:space:]]#*}"
			value="${value%"${value##*[![:space:]]}"}"
		fi
		if [[ -z "${!key+x}" ]]; then
			export "$key=$value"
		fi
	done <"$file"
}

# require_cmd NAME [HINT]: the command is on PATH (a tool a script runs itself: openssl, jq, docker).
require_cmd() {
	command -v "$1" >/dev/null 2>&1 ||
		{
			log error "command '$1' not found; ${2:-install it (make setup installs what the project needs)}"
			return 1
		}
}

# ftk_path PATH: absolute path, relative ones taken from FTK_HOME (as the Python settings do).
ftk_path() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$FTK_HOME/${1#./}" ;;
	esac
}

# venv_tool VENV TOOL: a tool of one of the project's virtual environments, or TOOL on PATH in containers.
venv_tool() {
	local path="${FTK_VENVS:-$FTK_HOME/.venvs}/$1/bin/$2"
	if [[ -x "$path" ]]; then
		printf '%s\n' "$path"
	elif command -v "$2" >/dev/null 2>&1; then
		command -v "$2"
	else
		die "$2 not found in ${FTK_VENVS:-$FTK_HOME/.venvs}/$1 nor on PATH; run: make setup"
	fi
}

# export_settings: the effective settings as shell variables (`ftk env export`: defaults from settings.py,
# validated there), so no script keeps a default or a check of its own.
export_settings() {
	local exports
	exports="$("$(venv_tool toolkit ftk)" env export)" || die "invalid settings (above); fix them, ftk env check lists every problem"
	eval "$exports"
}

# exec_stage STAGE ARGS...: a stage's whole entrypoint: --help prints the calling script's header, anything else
# goes to `ftk run STAGE`, the stage's one implementation, which replaces this shell (signals reach it).
exec_stage() {
	local stage="$1"
	shift
	case "${1:-}" in
	-h | --help)
		show_help "$0"
		return 0
		;;
	esac
	step "$stage: ftk run $stage $*"
	exec "$(venv_tool toolkit ftk)" run "$stage" "$@"
}

# show_help: print the leading comment block of the calling script (lines starting with '# ' after the shebang).
show_help() {
	local script="${1:-$0}"
	sed -n '2,/^[^#]/{/^#/!d;s/^# \{0,1\}//;p;}' "$script"
}

# run_logged LOGFILE CMD...: run a command, streaming its output to the terminal and appending it to LOGFILE.
run_logged() {
	local logfile="$1"
	shift
	mkdir -p "$(dirname "$logfile")"
	info "running: $*"
	"$@" 2>&1 | tee -a "$logfile"
	return "${PIPESTATUS[0]}"
}

# pidfile_pid FILE: print the pid FILE names when that process is alive; status 1 otherwise (stale or no file).
pidfile_pid() {
	local pid
	[[ -f "$1" ]] || return 1
	pid="$(cat "$1")"
	[[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}
