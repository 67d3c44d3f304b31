#!/usr/bin/env bats
# scripts/lib/checks.sh: every check passes silently, or fails with one line naming the value and the fix.

load helpers/lib

setup() {
	lib_setup
}

teardown() {
	if [[ -n "${LISTENER_PID:-}" ]]; then
		kill "$LISTENER_PID" 2>/dev/null || true
	fi
}

# --- require_cmd -------------------------------------------------------------------------------------------

@test "require_cmd: a command on PATH passes silently" {
	lib 'require_cmd bash'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "require_cmd: a missing command names it and says how to install" {
	lib 'require_cmd no-such-tool-ftk'
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] command 'no-such-tool-ftk' not found; install it (make setup installs what the project needs)" ]
}

@test "require_cmd: a custom hint replaces the default fix" {
	lib 'require_cmd no-such-tool-ftk "apt-get install jq"'
	[ "$status" -eq 1 ]
	[ "$output" = "[error] command 'no-such-tool-ftk' not found; apt-get install jq" ]
}

# --- check_model_dir ---------------------------------------------------------------------------------------

@test "check_model_dir: an empty value asks for MODEL_ID" {
	lib 'check_model_dir ""'
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"model folder is empty; set MODEL_ID"* ]]
}

@test "check_model_dir: a missing folder names it and the download stage" {
	lib "check_model_dir '$BATS_TEST_TMPDIR/nope'"
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"model folder $BATS_TEST_TMPDIR/nope does not exist; run the download stage (scripts/download.sh)"* ]]
}

@test "check_model_dir: no config.json" {
	mkdir -p "$BATS_TEST_TMPDIR/m"
	lib "check_model_dir '$BATS_TEST_TMPDIR/m'"
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"$BATS_TEST_TMPDIR/m has no config.json"*"download it again"* ]]
}

@test "check_model_dir: no weights" {
	mkdir -p "$BATS_TEST_TMPDIR/m"
	echo '{}' >"$BATS_TEST_TMPDIR/m/config.json"
	echo '{}' >"$BATS_TEST_TMPDIR/m/tokenizer.json"
	lib "check_model_dir '$BATS_TEST_TMPDIR/m'"
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"$BATS_TEST_TMPDIR/m has no weights (*.safetensors or *.bin)"*"run it again"* ]]
}

@test "check_model_dir: no tokenizer" {
	mkdir -p "$BATS_TEST_TMPDIR/m"
	echo '{}' >"$BATS_TEST_TMPDIR/m/config.json"
	: >"$BATS_TEST_TMPDIR/m/model.safetensors"
	lib "check_model_dir '$BATS_TEST_TMPDIR/m'"
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"$BATS_TEST_TMPDIR/m has no tokenizer (tokenizer.json, tokenizer.model or vocab.json)"*"copy the tokenizer files"* ]]
}

@test "check_model_dir: a complete folder passes (safetensors or bin; any tokenizer kind)" {
	mkdir -p "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	echo '{}' >"$BATS_TEST_TMPDIR/a/config.json"
	: >"$BATS_TEST_TMPDIR/a/model-00001-of-00002.safetensors"
	echo '{}' >"$BATS_TEST_TMPDIR/a/tokenizer.json"
	echo '{}' >"$BATS_TEST_TMPDIR/b/config.json"
	: >"$BATS_TEST_TMPDIR/b/pytorch_model.bin"
	: >"$BATS_TEST_TMPDIR/b/tokenizer.model"
	lib "check_model_dir '$BATS_TEST_TMPDIR/a' && check_model_dir '$BATS_TEST_TMPDIR/b'"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "check_model_dir: the real default model passes" {
	model="$FTK_REPO/models/SmolLM2-135M-Instruct"
	[ -f "$model/config.json" ] || {
		echo "$model is missing: run make setup" >&2
		return 1
	}
	lib "check_model_dir '$model'"
	[ "$status" -eq 0 ]
}

# --- visible_gpus / check_gpus -----------------------------------------------------------------------------

@test "visible_gpus: counts nvidia-smi -L lines" {
	fake_nvidia_smi 4
	lib 'visible_gpus'
	[ "$output" = "4" ]
}

@test "visible_gpus: CUDA_VISIBLE_DEVICES narrows the count, empty or -1 hides all" {
	fake_nvidia_smi 4
	CUDA_VISIBLE_DEVICES=1,3 lib 'visible_gpus'
	[ "$output" = "2" ]
	CUDA_VISIBLE_DEVICES="" lib 'visible_gpus'
	[ "$output" = "0" ]
	CUDA_VISIBLE_DEVICES=-1 lib 'visible_gpus'
	[ "$output" = "0" ]
	# more ids than GPUs: still the GPUs there are
	CUDA_VISIBLE_DEVICES=0,1,2,3,4,5 lib 'visible_gpus'
	[ "$output" = "4" ]
}

@test "visible_gpus: no nvidia-smi means 0, and lines that are not GPUs are not counted" {
	PATH="/usr/bin:/bin" lib 'visible_gpus'
	[ "$output" = "0" ]
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	printf '#!/bin/sh\necho "No devices were found"\nexit 6\n' >"$BATS_TEST_TMPDIR/bin/nvidia-smi"
	chmod +x "$BATS_TEST_TMPDIR/bin/nvidia-smi"
	PATH="$BATS_TEST_TMPDIR/bin:$PATH" lib 'visible_gpus'
	[ "$output" = "0" ]
}

@test "check_gpus: enough GPUs pass silently" {
	fake_nvidia_smi 2
	ALLOW_CPU=false lib 'check_gpus 2 "vLLM"'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "check_gpus: too few GPUs name the need, the count and the fixes (ALLOW_CPU included)" {
	fake_nvidia_smi 2
	ALLOW_CPU=false lib 'check_gpus 4 "vLLM (TENSOR_PARALLEL_SIZE=4)"'
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == "[error] vLLM (TENSOR_PARALLEL_SIZE=4) needs 4 GPU(s) but 2 visible"* ]]
	[[ "$output" == *"set ALLOW_CPU=true on a CPU host" ]]
}

@test "check_gpus: CUDA_VISIBLE_DEVICES narrowing makes it fail and is shown" {
	fake_nvidia_smi 4
	CUDA_VISIBLE_DEVICES=0 ALLOW_CPU=false lib 'check_gpus 2 training'
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == *"training needs 2 GPU(s) but 1 visible"*"CUDA_VISIBLE_DEVICES='0'"* ]]
}

@test "check_gpus: ALLOW_CPU=true skips the check with a warning (any spelling of true)" {
	for value in true True 1 yes; do
		PATH="/usr/bin:/bin" ALLOW_CPU="$value" lib 'check_gpus 8 training'
		[ "$status" -eq 0 ]
		one_line
		[[ "$output" == "[warn] GPU check for training skipped (ALLOW_CPU=$value)"* ]]
	done
}

@test "check_gpus: ALLOW_CPU unset means a real check" {
	PATH="/usr/bin:/bin" lib 'check_gpus 1 training'
	[ "$status" -eq 1 ]
	[[ "$output" == *"needs 1 GPU(s) but 0 visible"* ]]
}

@test "check_gpus: 0 GPUs needed passes without nvidia-smi" {
	PATH="/usr/bin:/bin" ALLOW_CPU=false lib 'check_gpus 0 training'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "check_gpus: a count that is not a whole number is named" {
	lib 'check_gpus two "TRAIN_GPUS"'
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] GPU count 'two' for TRAIN_GPUS is not a whole number; fix the setting that sets it" ]
}

# --- check_port_free ---------------------------------------------------------------------------------------

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

@test "check_port_free: a free port passes silently" {
	port="$(free_port)"
	lib "check_port_free $port"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "check_port_free: a port in use names it and how to find the process" {
	python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); time.sleep(120)' >"$BATS_TEST_TMPDIR/port" &
	LISTENER_PID=$!
	for _ in $(seq 50); do
		[ -s "$BATS_TEST_TMPDIR/port" ] && break
		sleep 0.1
	done
	port="$(cat "$BATS_TEST_TMPDIR/port")"
	lib "check_port_free $port 127.0.0.1"
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] port $port on 127.0.0.1 is already in use; stop what listens there (ss -ltnp 'sport = :$port') or choose another port in .env" ]
}

@test "check_port_free: not a port number" {
	for bad in abc 0 70000 ""; do
		lib "check_port_free '$bad'"
		[ "$status" -eq 1 ]
		one_line
		[ "$output" = "[error] port '$bad' is not a number from 1 to 65535; fix it in .env" ]
	done
}

# --- check_disk --------------------------------------------------------------------------------------------

@test "check_disk: enough space passes silently, also for a folder not created yet" {
	lib "check_disk '$BATS_TEST_TMPDIR/not/yet/there' 1"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "check_disk: an absurd need fails with both figures" {
	lib "check_disk '$BATS_TEST_TMPDIR' 999999999"
	[ "$status" -eq 1 ]
	one_line
	free="$(df -Pm "$BATS_TEST_TMPDIR" | awk 'NR==2 {print $4}')"
	[[ "$output" == "[error] only "*" MiB free on the disk of $BATS_TEST_TMPDIR, need 999999999 MiB; free space there or point the setting to a larger disk" ]]
	# the reported figure is the real one (give or take what changed between the two df calls)
	reported="$(sed -E 's/.*only ([0-9]+) MiB.*/\1/' <<<"$output")"
	((reported > free - 100 && reported < free + 100))
}

@test "check_disk: a need that is not a number is named" {
	lib "check_disk '$BATS_TEST_TMPDIR' lots"
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] disk space needed 'lots' for $BATS_TEST_TMPDIR is not a whole number of MiB; fix the setting that sets it" ]
}

# --- check_writable ----------------------------------------------------------------------------------------

@test "check_writable: creates a missing folder and leaves no probe file" {
	lib "check_writable '$BATS_TEST_TMPDIR/out/deep'"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -d "$BATS_TEST_TMPDIR/out/deep" ]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/out/deep")" ]
}

@test "check_writable: a folder that cannot be created (under a file) is named" {
	: >"$BATS_TEST_TMPDIR/afile"
	lib "check_writable '$BATS_TEST_TMPDIR/afile/sub'"
	[ "$status" -eq 1 ]
	one_line
	[ "$output" = "[error] cannot create $BATS_TEST_TMPDIR/afile/sub; fix its permissions or choose another folder" ]
}

@test "check_writable: a folder that exists but refuses files fails even for root (/proc)" {
	lib "check_writable /proc"
	[ "$status" -eq 1 ]
	one_line
	[[ "$output" == "[error] /proc is not writable by $(id -un); fix its permissions (chown/chmod) or choose another folder" ]]
}
