"""The checked-in LLaMA-Factory key list matches the LLaMA-Factory installed in the train venv."""

from __future__ import annotations

import json
import subprocess

from conftest import HOME, clean_env, venv_bin


def test_key_list_matches_the_installed_llamafactory() -> None:
    r = subprocess.run(
        [str(venv_bin("train", "python")), "-m", "ftk.recipes.lf_keys", "--check"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    known = json.loads((HOME / "toolkit" / "src" / "ftk" / "recipes" / "llamafactory_keys.json").read_text())
    assert {
        "lora_rank",
        "image_max_pixels",
        "export_dir",
        "resume_from_checkpoint",
    } <= set(known["keys"])
    assert known["templates"]["qwen3_vl_nothink"]["multimodal"] and not known["templates"]["smollm2"]["multimodal"]
