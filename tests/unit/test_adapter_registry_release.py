"""The adapter registry and the release pointer as files: what the serve stage and the gateway read from them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from ftk.serve import preflight, registry, release
from ftk.settings import Settings
from serve_fakes import make_adapter, make_model


def entry(name: str, path: Path) -> registry.Entry:
    return registry.Entry(name, str(path), "base", 8, "alice", "2026-12-07T00:00:00Z")


def test_registry_round_trip_keeps_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "adapters.json"
    registry.put(path, entry("b", tmp_path / "b"))
    registry.put(path, entry("a", tmp_path / "a"))
    assert [e.name for e in registry.read(path)] == ["a", "b"]
    assert [e["name"] for e in json.loads(path.with_name("adapters.json.bak").read_text())["adapters"]] == ["b"]
    assert registry.remove(path, "b") and not registry.remove(path, "b")
    assert [e.name for e in registry.read(path)] == ["a"]


def test_a_damaged_registry_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "adapters.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"LORA_REGISTRY=.*adapters.json.*restore"):
        registry.read(path)


def test_the_serve_preflight_adds_and_checks_the_registered_adapters(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    path = tmp_path / "adapters.json"
    registry.put(path, entry("hot", make_adapter(tmp_path / "hot", model, r=8)))
    report = preflight.run(Settings(serve_model_path=model, lora_registry=path))  # type: ignore[arg-type]
    assert report.problems == [] and [a.name for a in report.adapters] == ["hot"]
    registry.put(path, entry("gone", tmp_path / "nope"))
    report = preflight.run(Settings(serve_model_path=model, lora_registry=path))  # type: ignore[arg-type]
    assert any("'gone'" in p and "does not exist" in p for p in report.problems), report.problems


def test_release_mode_serves_the_pointer_and_sends_the_gateway_to_its_server(tmp_path: Path) -> None:
    pointer = tmp_path / "release.json"
    s = Settings(serve_model_path="release", release_file=pointer, vllm_upstreams="10.0.0.1:8000")  # type: ignore[arg-type]
    assert s.vllm_servers == ["10.0.0.1:8000"] and "ftk release promote" in str(s.resolved_serve_model_path)
    current = {"run_id": "v2", "path": str(tmp_path / "v2"), "upstream": "127.0.0.1:41234"}
    pointer.write_text(json.dumps({"current": current, "history": []}))
    assert s.vllm_servers == ["127.0.0.1:41234"] and s.resolved_serve_model_path == tmp_path / "v2"
    other = Settings(release_file=pointer, vllm_upstreams="10.0.0.1:8000")  # type: ignore[arg-type]
    assert other.vllm_servers == ["10.0.0.1:8000"]  # the pointer counts only with SERVE_MODEL_PATH=release


def test_release_list_marks_current_previous_and_broken(tmp_path: Path) -> None:
    merged = tmp_path / "models" / "merged"
    for run in ("v1", "v2", "bad"):
        make_model(merged / run)
    (merged / "bad" / "model.safetensors").write_bytes(struct.pack("<Q", 8) + b"notjson!")
    s = Settings(models_dir=tmp_path / "models", release_file=tmp_path / "release.json")  # type: ignore[arg-type]
    release.write(s, {"current": {"run_id": "v2"}, "history": [{"run_id": "v1"}]})
    rows = {r["run_id"]: r for r in release.versions(s)}
    assert rows["v2"]["release"] == "current" and rows["v1"]["release"] == "previous"
    assert rows["v1"]["status"] == "ok" and rows["bad"]["status"].startswith("broken:")
