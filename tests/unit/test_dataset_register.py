"""`ftk dataset register|list|init|make-shapes`: entries inferred from the file, safe edits of dataset_info.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk
from ftk import files
from ftk.console import UserError
from ftk.dataset.registry import KEEP_BACKUPS, Registry

CHAT = (
    '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "<image>colour?"}, '
    '{"role": "assistant", "content": "red"}], "images": ["img/red.png"]}\n'
)
OTHER = {
    "file_name": "elsewhere.json",
    "formatting": "alpaca",
    "note": ["kept", "exactly", 1.5],
}


@pytest.fixture
def dsdir(tmp_path) -> Path:
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "img" / "red.png")
    (tmp_path / "chat.jsonl").write_text(CHAT)
    (tmp_path / "alpaca.json").write_text('[{"instruction": "a", "input": "", "output": "b", "system": "s"}]')
    return tmp_path


def reg(dsdir: Path, file: str, name: str, *extra: str, env: dict[str, str] | None = None):
    return run_ftk(
        "dataset",
        "register",
        str(dsdir / file),
        "--name",
        name,
        "--dataset-dir",
        str(dsdir),
        "--media-root",
        str(dsdir),
        *extra,
        env=env,
    )


def info(dsdir: Path) -> dict:
    return json.loads((dsdir / "dataset_info.json").read_text())


def test_register_infers_formatting_columns_and_tags(dsdir):
    r = reg(dsdir, "chat.jsonl", "chat")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "added: 'chat'" in r.stdout
    assert info(dsdir)["chat"] == {
        "file_name": "chat.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
            "observation_tag": "observation",
            "function_tag": "function_call",
            "system_tag": "system",
        },
    }
    r = reg(dsdir, "alpaca.json", "alp")
    assert r.returncode == 0, r.stderr
    assert info(dsdir)["alp"] == {
        "file_name": "alpaca.json",
        "formatting": "alpaca",
        "columns": {
            "prompt": "instruction",
            "query": "input",
            "response": "output",
            "system": "system",
        },
    }


def test_file_outside_the_dataset_dir_gets_an_absolute_file_name(dsdir, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "a.json"
    elsewhere.write_text('[{"instruction": "a", "output": "b"}]')
    r = run_ftk(
        "dataset",
        "register",
        str(elsewhere),
        "--name",
        "abs",
        "--dataset-dir",
        str(dsdir),
    )
    assert r.returncode == 0, r.stderr
    assert info(dsdir)["abs"]["file_name"] == str(elsewhere.resolve())


def test_invalid_data_is_refused_with_its_problems(dsdir):
    (dsdir / "bad.jsonl").write_text('{"instruction": "a", "output": 3}\n')
    (dsdir / "dataset_info.json").write_text(json.dumps({"other": OTHER}))
    before = (dsdir / "dataset_info.json").read_bytes()
    r = reg(dsdir, "bad.jsonl", "bad")
    assert r.returncode == 1
    assert f"{dsdir / 'bad.jsonl'}:1: sample 1: output: is a number, not a string" in r.stdout
    assert "refusing to register 'bad'" in r.stderr
    assert (dsdir / "dataset_info.json").read_bytes() == before
    assert not list(dsdir.glob("dataset_info.json.bak.*"))


def test_other_entries_untouched_and_old_file_backed_up(dsdir):
    (dsdir / "dataset_info.json").write_text(json.dumps({"other": OTHER, "zeta": {"file_name": "z.json"}}))
    before = (dsdir / "dataset_info.json").read_text()
    r = reg(dsdir, "chat.jsonl", "chat")
    assert r.returncode == 0, r.stderr
    data = info(dsdir)
    assert list(data) == ["other", "zeta", "chat"]
    assert data["other"] == OTHER and data["zeta"] == {"file_name": "z.json"}
    backups = list(dsdir.glob("dataset_info.json.bak.*"))
    assert len(backups) == 1 and backups[0].read_text() == before
    assert not list(dsdir.glob(".dataset_info.json.*")), "temp file left behind"


def test_identical_entry_is_a_no_op(dsdir):
    assert reg(dsdir, "chat.jsonl", "chat").returncode == 0
    stat = (dsdir / "dataset_info.json").stat()
    r = reg(dsdir, "chat.jsonl", "chat")
    assert r.returncode == 0
    assert "unchanged" in r.stdout and "no-op" in r.stdout
    assert (dsdir / "dataset_info.json").stat().st_mtime_ns == stat.st_mtime_ns
    assert not list(dsdir.glob("dataset_info.json.bak.*"))


def test_different_entry_needs_force(dsdir):
    assert reg(dsdir, "chat.jsonl", "same").returncode == 0
    r = reg(dsdir, "alpaca.json", "same")
    assert r.returncode == 1
    assert "'same' is already registered with a different definition" in r.stderr and "--force" in r.stderr
    assert info(dsdir)["same"]["file_name"] == "chat.jsonl"
    r = reg(dsdir, "alpaca.json", "same", "--force")
    assert r.returncode == 0, r.stderr
    assert "replaced: 'same'" in r.stdout
    assert info(dsdir)["same"]["file_name"] == "alpaca.json"
    backup = next(dsdir.glob("dataset_info.json.bak.*"))
    assert json.loads(backup.read_text())["same"]["file_name"] == "chat.jsonl"


def test_corrupt_registry_names_line_and_column_and_is_never_overwritten(dsdir):
    bad = '{\n  "a": {"file_name": "a.json"},\n  "b": {"file_name" "b.json"}\n}\n'
    (dsdir / "dataset_info.json").write_text(bad)
    r = reg(dsdir, "chat.jsonl", "chat", "--force")
    assert r.returncode == 1
    assert f"{dsdir / 'dataset_info.json'}:3:21: invalid JSON" in r.stderr
    assert (dsdir / "dataset_info.json").read_text() == bad
    r = run_ftk("dataset", "list", "--dataset-dir", str(dsdir))
    assert r.returncode == 1 and f"{dsdir / 'dataset_info.json'}:3:21" in r.stderr


def test_bad_name_and_missing_file_are_usage_errors(dsdir):
    assert reg(dsdir, "chat.jsonl", "has space").returncode == 2
    r = reg(dsdir, "nope.jsonl", "x")
    assert r.returncode == 2 and "nope.jsonl: no such file" in r.stderr


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(dsdir, monkeypatch):
    registry = Registry(dsdir)
    registry.add("one", {"file_name": "1.json"}, force=False)
    before = registry.path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)  # the one rename every atomic write ends with
    with pytest.raises(OSError):
        registry.add("two", {"file_name": "2.json"}, force=False)
    assert registry.path.read_bytes() == before
    assert not list(dsdir.glob(".dataset_info.json.*"))


def test_backups_are_rotated(dsdir):
    registry = Registry(dsdir)
    for i in range(KEEP_BACKUPS + 5):
        registry.add(f"d{i}", {"file_name": f"{i}.json"}, force=False)
    backups = registry.backups()
    assert len(backups) == KEEP_BACKUPS
    assert set(json.loads(backups[-1].read_text())) == {f"d{i}" for i in range(KEEP_BACKUPS + 3 + 1)}


def test_registry_read_error_is_a_user_error(dsdir):
    (dsdir / "dataset_info.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="top level is not an object"):
        Registry(dsdir).read()


def test_identity_template_is_filled_from_settings(dsdir):
    env = clean_env(ASSISTANT_NAME="Zed", ASSISTANT_AUTHOR="Acme Labs")
    r = run_ftk(
        "dataset",
        "register",
        str(HOME / "data" / "identity.json"),
        "--name",
        "identity",
        "--dataset-dir",
        str(dsdir),
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    entry = info(dsdir)["identity"]
    assert entry["file_name"] == "generated/identity.json" and entry["formatting"] == "alpaca"
    samples = json.loads((dsdir / "generated" / "identity.json").read_text())
    assert len(samples) == len(json.loads((HOME / "data" / "identity.json").read_text()))
    text = json.dumps(samples)
    assert "{{" not in text
    assert all("Zed" in s["output"] and "Acme Labs" in s["output"] for s in samples)
    # the template stays a template
    assert "{{name}}" in (HOME / "data" / "identity.json").read_text()


def test_project_data_sets_register_and_list(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    r = run_ftk("dataset", "init", "--dataset-dir", str(tmp_path), "--media-root", str(media))
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(info(tmp_path)) == {"identity", "instructions", "shapes", "preferences", "feedback"}
    assert len(list((media / "generated" / "shapes").glob("*.png"))) == 24
    r = run_ftk("dataset", "list", "--dataset-dir", str(tmp_path), "--media-root", str(media))
    assert r.returncode == 0, r.stdout + r.stderr
    for name, samples in (
        ("identity", 45),
        ("instructions", 52),
        ("shapes", 72),
        ("preferences", 24),
        ("feedback", 48),
    ):
        row = next(x for x in r.stdout.splitlines() if f" {name} " in x)
        assert f" {samples} " in row and "valid" in row
    again = run_ftk("dataset", "init", "--dataset-dir", str(tmp_path), "--media-root", str(media))
    assert again.returncode == 0 and again.stdout.count("unchanged") == 5


def test_list_flags_entries_that_no_longer_validate(dsdir):
    assert reg(dsdir, "chat.jsonl", "chat").returncode == 0
    assert reg(dsdir, "alpaca.json", "alp").returncode == 0
    (dsdir / "img" / "red.png").unlink()
    (dsdir / "alpaca.json").unlink()
    r = run_ftk("dataset", "list", "--dataset-dir", str(dsdir), "--media-root", str(dsdir))
    assert r.returncode == 1
    chat = next(x for x in r.stdout.splitlines() if " chat " in x)
    alp = next(x for x in r.stdout.splitlines() if " alp " in x)
    assert "media 1" in chat and "file missing" in alp


def test_shapes_are_deterministic_and_match_the_committed_samples(tmp_path):
    from ftk.dataset.shapes import make_shapes, samples_jsonl
    from PIL import Image

    assert (HOME / "data" / "shapes.jsonl").read_text() == samples_jsonl()
    written, total = make_shapes(tmp_path)
    assert (written, total) == (24, 24)
    assert make_shapes(tmp_path) == (0, 24)
    with Image.open(tmp_path / "generated" / "shapes" / "red_circle.png") as im:
        assert im.getpixel((56, 56)) == (220, 32, 32) and im.getpixel((2, 2)) == (
            255,
            255,
            255,
        )
    first = json.loads(samples_jsonl().splitlines()[0])
    assert first["messages"][1]["content"] == "red" and first["images"] == ["generated/shapes/red_circle.png"]


def test_unreadable_image_is_reported(tmp_path, monkeypatch):
    # root reads everything, so the permission branch is exercised with os.access answering as for a user
    from ftk.dataset import media as media_mod
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "x.png")
    monkeypatch.setattr(media_mod.os, "access", lambda p, mode: False)
    what, fix = media_mod.MediaChecker(tmp_path).check("x.png", image=True) or ("", "")
    assert "not readable" in what and "chmod" in fix
    assert os.access(tmp_path / "x.png", os.R_OK) is False  # the patch is what the checker saw


def test_validate_a_registered_name_uses_its_own_columns_and_tags(dsdir):
    # an entry written by hand with non-default names: LLaMA-Factory reads 'dialog' with speaker/text tags
    (dsdir / "custom.jsonl").write_text(
        '{"dialog": [{"speaker": "q", "text": "hi"}, {"speaker": "a", "text": "hello"}]}\n'
        '{"dialog": [{"speaker": "a", "text": "hi"}, {"speaker": "q", "text": "hello"}]}\n'
    )
    tags = {
        "role_tag": "speaker",
        "content_tag": "text",
        "user_tag": "q",
        "assistant_tag": "a",
    }
    entry = {
        "file_name": "custom.jsonl",
        "formatting": "sharegpt",
        "columns": {"messages": "dialog"},
        "tags": tags,
    }
    (dsdir / "dataset_info.json").write_text(json.dumps({"custom": entry}))
    r = run_ftk(
        "dataset",
        "validate",
        "custom",
        "--dataset-dir",
        str(dsdir),
        "--media-root",
        str(dsdir),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [x for x in r.stdout.splitlines() if "custom.jsonl:" in x]
    assert len(lines) == 2, lines  # sample 2: out of order, and it ends with the user
    assert "custom.jsonl:2: sample 2: dialog[0].speaker: 'a' where a q/observation turn must come" in lines[0]
    r = run_ftk("dataset", "validate", "nosuch", "--dataset-dir", str(dsdir))
    assert r.returncode == 2 and "nosuch: no such file, nor a data set registered" in r.stderr
