#!/usr/bin/env bash
# setup step: the tiny random Qwen3-VL model (models/tiny-qwen3vl) the vision-language tests and demo use.
# Built offline in the train venv (transformers' VL classes + torchvision); a no-op when its manifest matches.
setup_tiny_vl() {
	"$FTK_VENVS/train/bin/ftk" tiny-vl build --arch qwen3vl --quiet ||
		die "tiny-vl: building models/tiny-qwen3vl failed (see above); run scripts/setup.sh train tiny-vl"
}
