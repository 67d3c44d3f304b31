#!/usr/bin/env bash
# The preflight checks from the deploy guides, shared by every entrypoint. Each check prints nothing when it
# passes, and on failure prints one line naming the value and the fix, then returns 1 (callers use `|| exit`).
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

_fail() {
	log error "$1"
	return 1
}

# require_cmd NAME [HINT]: the command is on PATH.
require_cmd() {
	command -v "$1" >/dev/null 2>&1 ||
		_fail "command '$1' not found; ${2:-install it (make setup installs what the project needs)}"
}

# check_model_dir DIR: a Hugging Face model folder with config.json, weights and a tokenizer.
check_model_dir() {
	local dir="$1"
	[[ -n "$dir" ]] || {
		_fail "model folder is empty; set MODEL_ID (or SERVE_MODEL_PATH) in .env"
		return
	}
	[[ -d "$dir" ]] || {
		_fail "model folder $dir does not exist; run the download stage (scripts/download.sh) or fix the path"
		return
	}
	[[ -f "$dir/config.json" ]] || {
		_fail "model folder $dir has no config.json; it is not a complete Hugging Face model, download it again"
		return
	}
	compgen -G "$dir/*.safetensors" >/dev/null || compgen -G "$dir/*.bin" >/dev/null || {
		_fail "model folder $dir has no weights (*.safetensors or *.bin); the download is incomplete, run it again"
		return
	}
	[[ -f "$dir/tokenizer.json" || -f "$dir/tokenizer.model" || -f "$dir/vocab.json" ]] || {
		_fail "model folder $dir has no tokenizer (tokenizer.json, tokenizer.model or vocab.json); copy the tokenizer files from the base model"
		return
	}
}

# visible_gpus: how many GPUs this process may use (nvidia-smi -L, narrowed by CUDA_VISIBLE_DEVICES).
visible_gpus() {
	local total=0
	if command -v nvidia-smi >/dev/null 2>&1; then
		total=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
	fi
	if [[ -n "${CUDA_VISIBLE_DEVICES+x}" ]]; then
		local ids="${CUDA_VISIBLE_DEVICES// /}" count=0 id
		if [[ -z "$ids" || "$ids" == "-1" || "$ids" == "none" ]]; then
			echo 0
			return
		fi
		local -a list
		IFS=',' read -ra list <<<"$ids"
		for id in "${list[@]}"; do
			[[ -n "$id" ]] && count=$((count + 1))
		done
		((count < total)) && total=$count
	fi
	echo "$total"
}

# check_gpus NEEDED [WHAT]: at least NEEDED GPUs are visible. ALLOW_CPU=true skips the check (CPU hosts, tests).
check_gpus() {
	local needed="$1" what="${2:-this stage}" have
	[[ "$needed" =~ ^[0-9]+$ ]] || {
		_fail "GPU count '$needed' for $what is not a whole number; fix the setting that sets it"
		return
	}
	((needed == 0)) && return 0
	local allow="${ALLOW_CPU:-false}"
	if [[ "${allow,,}" =~ ^(1|true|yes|on)$ ]]; then
		warn "GPU check for $what skipped (ALLOW_CPU=${ALLOW_CPU}); it needs $needed GPU(s) on a GPU host"
		return 0
	fi
	have=$(visible_gpus)
	((have >= needed)) ||
		_fail "$what needs $needed GPU(s) but $have visible (nvidia-smi -L, CUDA_VISIBLE_DEVICES='${CUDA_VISIBLE_DEVICES-}'); lower the GPU setting, fix CUDA_VISIBLE_DEVICES, or set ALLOW_CPU=true on a CPU host"
}

# check_port_free PORT [HOST]: nothing listens on HOST:PORT yet.
check_port_free() {
	local port="$1" host="${2:-127.0.0.1}"
	if [[ ! "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		_fail "port '$port' is not a number from 1 to 65535; fix it in .env"
		return
	fi
	if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
		_fail "port $port on $host is already in use; stop what listens there (ss -ltnp 'sport = :$port') or choose another port in .env"
		return
	fi
	return 0
}

# check_disk DIR NEEDED_MB: the file system holding DIR has at least NEEDED_MB MiB free.
check_disk() {
	local dir="$1" needed="$2" probe free
	[[ "$needed" =~ ^[0-9]+$ ]] || {
		_fail "disk space needed '$needed' for $dir is not a whole number of MiB; fix the setting that sets it"
		return
	}
	probe="$dir"
	while [[ ! -e "$probe" && "$probe" != "/" ]]; do probe="$(dirname "$probe")"; done
	free=$(df -Pm "$probe" 2>/dev/null | awk 'NR==2 {print $4}')
	[[ "$free" =~ ^[0-9]+$ ]] || {
		_fail "cannot read the free space of $dir (df -Pm $probe); check that the folder is on a mounted disk"
		return
	}
	((free >= needed)) ||
		_fail "only ${free} MiB free on the disk of $dir, need ${needed} MiB; free space there or point the setting to a larger disk"
}

# check_writable DIR: DIR exists (or can be created) and a file can be written in it.
check_writable() {
	local dir="$1" probe
	mkdir -p "$dir" 2>/dev/null || {
		_fail "cannot create $dir; fix its permissions or choose another folder"
		return
	}
	probe="$dir/.ftk-write-test.$$"
	if ! (: >"$probe") 2>/dev/null; then
		_fail "$dir is not writable by $(id -un); fix its permissions (chown/chmod) or choose another folder"
		return
	fi
	rm -f "$probe"
}
