"""The adapter registry and the release pointer as files: what the serve stage and the gateway read from them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from ftk.console import UserError
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


def release_settings(tmp_path: Path) -> Settings:
    merged = tmp_path / "models" / "merged"
    for run in ("v1", "v2", "v3"):
        make_model(merged / run)
    (merged / "bad").mkdir()
    return Settings(
        serve_model_path="release",  # type: ignore[arg-type]
        models_dir=tmp_path / "models",  # type: ignore[arg-type]
        release_file=tmp_path / "release" / "release.json",  # type: ignore[arg-type]
    )


def test_record_moves_the_old_current_into_the_history_and_rollback_takes_it_back_out(tmp_path: Path) -> None:
    s = release_settings(tmp_path)
    merged = tmp_path / "models" / "merged"
    release.record(s, "v1", merged / "v1", "serve:8000", "promote")
    release.record(s, "v2", merged / "v2", "cand-v2:8000", "promote")
    release.record(s, "v3", merged / "v3", "cand-v3:8000", "promote")
    data = release.read(s)
    assert data["current"]["run_id"] == "v3" and data["current"]["upstream"] == "cand-v3:8000"
    assert [e["run_id"] for e in data["history"]] == ["v2", "v1"]
    assert release.previous(s) == "v2"
    before, entry = release.record(s, "v2", merged / "v2", "cand-v2b:8000", "rollback")
    assert before["current"]["run_id"] == "v3" and entry["action"] == "rollback"
    data = release.read(s)
    # the release left is history[0] (a second rollback returns to it); v2 is no longer in the history
    assert data["current"]["run_id"] == "v2" and [e["run_id"] for e in data["history"]] == ["v3", "v1"]
    assert json.loads(s.resolved_release_file.with_name("release.json.bak").read_text())["current"]["run_id"] == "v3"


def test_repoint_changes_only_the_current_upstream(tmp_path: Path) -> None:
    s = release_settings(tmp_path)
    merged = tmp_path / "models" / "merged"
    release.record(s, "v1", merged / "v1", "serve:8000", "promote")
    release.record(s, "v2", merged / "v2", "ftk-release-v2-1:8000", "promote")
    before = release.read(s)
    entry = release.repoint(s, "v2", "serve:8000")
    after = release.read(s)
    assert entry["upstream"] == "serve:8000" and after["history"] == before["history"]
    assert {k: v for k, v in after["current"].items() if k not in ("upstream", "moved_at")} == {
        k: v for k, v in before["current"].items() if k != "upstream"
    }
    assert s.vllm_servers == ["serve:8000"], "the gateway follows the repointed upstream"
    with pytest.raises(UserError, match="current release is v2, not v1"):
        release.repoint(s, "v1", "serve:8000")


def test_undo_takes_back_only_the_record_it_names(tmp_path: Path) -> None:
    """A promote whose gateway reload failed puts the old pointer back (the gateway still runs it)."""
    s = release_settings(tmp_path)
    merged = tmp_path / "models" / "merged"
    release.record(s, "v1", merged / "v1", "serve:8000", "promote")
    before = release.read(s)
    release.record(s, "v2", merged / "v2", "cand-v2:8000", "promote")
    with pytest.raises(UserError, match="names v2 on cand-v2:8000, not v2 on other:8000: nothing to undo"):
        release.undo_record(s, "v2", "other:8000")
    assert release.undo_record(s, "v2", "cand-v2:8000")["run_id"] == "v1"
    assert release.read(s) == before and s.vllm_servers == ["serve:8000"]
    # a second undo finds v1 current, not the record it names: the pointer is not rolled back twice
    with pytest.raises(UserError, match="nothing to undo"):
        release.undo_record(s, "v2", "cand-v2:8000")
    assert release.read(s) == before


def test_check_refuses_the_current_release_and_a_broken_folder_and_previous_needs_a_history(tmp_path: Path) -> None:
    s = release_settings(tmp_path)
    merged = tmp_path / "models" / "merged"
    with pytest.raises(UserError, match=r"no previous release .*nothing to roll back to"):
        release.previous(s)
    assert release.check(s, "v1") == merged / "v1"
    release.record(s, "v1", merged / "v1", "serve:8000", "promote")
    with pytest.raises(UserError, match="v1 is already the current release"):
        release.check(s, "v1")
    with pytest.raises(UserError, match=r"gate: preflight of .*bad failed"):
        release.check(s, "bad")
    with pytest.raises(UserError, match=r"gate: preflight of .*nope failed"):
        release.check(s, "nope")
    assert release.read(s)["current"]["run_id"] == "v1" and release.read(s)["history"] == []
