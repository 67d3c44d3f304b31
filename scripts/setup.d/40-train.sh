#!/usr/bin/env bash
# setup step: the train venv (.venvs/train): LLaMA-Factory for text and vision-language SFT and export.
setup_train() {
	ensure_venv train "$FTK_HOME/toolkit/requirements/train.txt" _train_post 7500
}

_train_post() {
	local dir="$1"
	# LLaMA-Factory imports torchaudio (audio is never used here), but its extension is linked against another
	# torch/CUDA build and breaks the import: drop the .so files, the Python part then imports fine.
	rm -f "$dir"/lib/python3*/site-packages/torchaudio/lib/_torchaudio*.so
	# ftk itself (no deps: its light deps are already here or installed next), so `ftk merge verify`
	# and the train preflight's template check run with LLaMA-Factory's transformers and peft.
	venv_pip "$dir" install --no-deps -e ./toolkit &&
		venv_pip "$dir" install "typer>=0.12" "rich>=13" "pydantic>=2.6" "pydantic-settings>=2.2" \
			"python-dotenv>=1.0" "filelock>=3.12" "pyyaml>=6" "psutil>=5.9" &&
		# one process proves the imports and `llamafactory-cli`'s entry point (importing torch costs ~20 s of CPU)
		"$dir/bin/python" -c "import llamafactory.data.mm_plugin, llamafactory.train.tuner, llamafactory.cli" &&
		[[ -x "$dir/bin/llamafactory-cli" ]]
}
