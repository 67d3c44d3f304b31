#!/usr/bin/env bash
# setup step: the embedded default model; `ftk model default` is a no-op when its manifest matches.
setup_model() {
	"$FTK_VENVS/toolkit/bin/ftk" model default --quiet
}
