"""`ftk dataset validate`: every bad input is reported with its file, line, sample and field, and the exit code.

The data files are run through the real `ftk` console script once per file (module fixtures); each test then
checks one problem line, so a test names the bad input it is about.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_ftk

GOOD_SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "<image>What colour?"},
        {"from": "gpt", "value": "red"},
    ],
    "images": ["good.png"],
}


def human_gpt(*turns: tuple[str, str], **extra: object) -> dict[str, object]:
    return {"conversations": [{"from": r, "value": v} for r, v in turns], **extra}


# Line N of sharegpt.jsonl is sample N; each tuple: (line, the expected start of the problem line after FILE:).
SHAREGPT_LINES: list[tuple[str, object, str]] = [
    ("good", GOOD_SHAREGPT, ""),
    (
        "misnamed column",
        {
            "conversation": [
                {"from": "human", "value": "a"},
                {"from": "gpt", "value": "b"},
            ]
        },
        "sample 2: conversations: missing column 'conversations'; rename 'conversation' to 'conversations'",
    ),
    (
        "misnamed role key",
        {
            "conversations": [
                {"form": "human", "value": "a"},
                {"from": "gpt", "value": "b"},
            ]
        },
        "sample 3: conversations[0].from: no 'from' key in the message; rename 'form' to 'from'",
    ),
    (
        "misnamed role tag",
        human_gpt(("user", "a"), ("gpt", "b")),
        "sample 4: conversations[0].from: unknown role 'user'; use 'human'",
    ),
    (
        "roles out of order",
        human_gpt(("gpt", "a"), ("human", "b")),
        "sample 5: conversations[0].from: 'gpt' where a human/observation turn must come",
    ),
    (
        "empty turn",
        human_gpt(("human", "a"), ("gpt", "  ")),
        "sample 6: conversations[1].value: empty turn",
    ),
    (
        "not ending with the assistant",
        human_gpt(("human", "a"), ("gpt", "b"), ("human", "c")),
        "sample 7: conversations[2]: the conversation ends with a 'human' turn",
    ),
    (
        "placeholder count",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["good.png", "good.png"]),
        "sample 8: images: 1 <image> placeholder(s) in the turns but 2 image(s) in 'images'",
    ),
    (
        "video placeholder count",
        human_gpt(("human", "a"), ("gpt", "b"), videos=["clip.mp4"]),
        "sample 9: videos: 0 <video> placeholder(s) in the turns but 1 video(s) in 'videos'",
    ),
    (
        "missing image",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["missing.png"]),
        "sample 10: images[0]: 'missing.png' does not exist",
    ),
    (
        "not an image",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["notimage.png"]),
        "sample 11: images[0]: 'notimage.png' is not an image",
    ),
    (
        "dot-dot escape",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["../outside/x.png"]),
        "sample 12: images[0]: '../outside/x.png' resolves to",
    ),
    (
        "absolute path escape",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["@OUTSIDE@"]),
        "sample 13: images[0]: '@OUTSIDE@' resolves to",
    ),
    (
        "symlink escape",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["link.png"]),
        "sample 14: images[0]: 'link.png' resolves to",
    ),
    ("duplicate", GOOD_SHAREGPT, "sample 15: sample: same content as sample 1"),
    (
        "bad json line",
        None,
        "sample 16: json: invalid JSON: Expecting ',' delimiter at line 16 column",
    ),
    (
        "misnamed media column",
        human_gpt(("human", "a"), ("gpt", "b"), image=["good.png"]),
        "sample 17: image: column 'image' is not read by LLaMA-Factory; rename it to 'images'",
    ),
    (
        "late system message",
        human_gpt(("human", "a"), ("system", "s"), ("gpt", "b")),
        "sample 18: conversations[1].from: a system message after the first message",
    ),
    ("not an object", [1, 2], "sample 19: sample: is a JSON array, not an object"),
    (
        "directory as image",
        human_gpt(("human", "<image>a"), ("gpt", "b"), images=["adir"]),
        "sample 20: images[0]: 'adir' is not a file",
    ),
    (
        "messages not a list",
        {"conversations": "hi"},
        "sample 21: conversations: is a string, not a list",
    ),
    (
        "content not a string",
        human_gpt(("human", "a"), ("gpt", 3)),
        "sample 22: conversations[1].value: is a number, not a string",
    ),
]

ALPACA_LINES: list[tuple[str, object, str]] = [
    ("good", {"instruction": "2+2?", "input": "", "output": "4"}, ""),
    (
        "missing output",
        {"instruction": "a", "input": ""},
        "sample 2: output: missing column 'output'; add",
    ),
    (
        "misnamed instruction",
        {"instrution": "a", "output": "b"},
        "sample 3: instruction: missing column 'instruction'; rename 'instrution' to 'instruction'",
    ),
    (
        "empty answer",
        {"instruction": "a", "output": ""},
        "sample 4: output: empty answer",
    ),
    (
        "empty user turn",
        {"instruction": "", "input": " ", "output": "b"},
        "sample 5: instruction: empty user turn",
    ),
    (
        "bad history",
        {"instruction": "a", "output": "b", "history": [["only one"]]},
        "sample 6: history[0]: is not a [prompt, response] pair of strings",
    ),
    (
        "alpaca placeholders",
        {"instruction": "a", "output": "b", "images": ["good.png"]},
        "sample 7: images: 0 <image> placeholder(s) in the turns but 1 image(s)",
    ),
    (
        "misnamed answer column",
        {"instruction": "a", "response": "b"},
        "sample 8: output: missing column 'output'; rename 'response' to 'output'",
    ),
]

OPENAI_LINES: list[tuple[str, object, str]] = [
    (
        "good",
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
            ]
        },
        "",
    ),
    (
        "sharegpt role in openai file",
        {
            "messages": [
                {"role": "human", "content": "a"},
                {"role": "assistant", "content": "b"},
            ]
        },
        "sample 2: messages[0].role: unknown role 'human'; use 'user'",
    ),
    (
        "from/value keys in role/content file",
        {
            "messages": [
                {"from": "user", "value": "a"},
                {"role": "assistant", "content": "b"},
            ]
        },
        "sample 3: messages[0].role: no 'role' key in the message; this file uses 'role'/'content'",
    ),
]


def _write_jsonl(path: Path, rows: list[tuple[str, object, str]], outside: Path) -> None:
    lines = []
    for _, obj, _ in rows:
        text = '{"conversations": [{"from": "human", "value": "x"}' if obj is None else json.dumps(obj)
        lines.append(text.replace("@OUTSIDE@", str(outside)))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    Image.new("RGB", (8, 8), "red").save(root / "good.png")
    (root / "notimage.png").write_text("not an image")
    (root / "clip.mp4").write_bytes(b"\x00" * 16)
    (root / "adir").mkdir()
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), "blue").save(outside / "x.png")
    os.symlink(outside / "x.png", root / "link.png")
    return root


@pytest.fixture(scope="module")
def sharegpt_run(media):
    f = media.parent / "sharegpt.jsonl"
    _write_jsonl(f, SHAREGPT_LINES, media.parent / "outside" / "x.png")
    return f, run_ftk("dataset", "validate", str(f), "--media-root", str(media))


@pytest.fixture(scope="module")
def alpaca_run(media):
    f = media.parent / "alpaca.jsonl"
    _write_jsonl(f, ALPACA_LINES, media)
    return f, run_ftk("dataset", "validate", str(f), "--media-root", str(media))


@pytest.fixture(scope="module")
def openai_run(media):
    f = media.parent / "openai.jsonl"
    _write_jsonl(f, OPENAI_LINES, media)
    return f, run_ftk("dataset", "validate", str(f), "--media-root", str(media))


def _assert_reported(run, rows, case: str) -> None:
    f, r = run
    index = next(i for i, row in enumerate(rows) if row[0] == case)
    expected = f"{f}:{index + 1}: {rows[index][2]}".replace("@OUTSIDE@", str(f.parent / "outside" / "x.png"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert any(line.startswith(expected) for line in r.stdout.splitlines()), f"{expected!r} not in:\n{r.stdout}"


@pytest.mark.parametrize("case", [row[0] for row in SHAREGPT_LINES[1:]])
def test_sharegpt_problem_names_line_sample_and_field(sharegpt_run, case):
    _assert_reported(sharegpt_run, SHAREGPT_LINES, case)


@pytest.mark.parametrize("case", [row[0] for row in ALPACA_LINES[1:]])
def test_alpaca_problem_names_line_sample_and_field(alpaca_run, case):
    _assert_reported(alpaca_run, ALPACA_LINES, case)


@pytest.mark.parametrize("case", [row[0] for row in OPENAI_LINES[1:]])
def test_openai_style_problem_names_line_sample_and_field(openai_run, case):
    _assert_reported(openai_run, OPENAI_LINES, case)


def test_every_problem_line_has_a_fix_and_good_samples_are_silent(sharegpt_run):
    f, r = sharegpt_run
    lines = [x for x in r.stdout.splitlines() if x.startswith(f"{f}:")]
    assert all("; " in x for x in lines)
    assert not any(x.startswith(f"{f}:1:") for x in lines), "the good first sample was reported"
    assert "invalid" in r.stdout and "sharegpt" in r.stdout  # the summary table


def test_escapes_say_outside_the_media_root(sharegpt_run):
    f, r = sharegpt_run
    for line in (12, 13, 14):
        row = next(x for x in r.stdout.splitlines() if x.startswith(f"{f}:{line}:"))
        assert "outside the media root" in row


def test_json_report_counts_every_problem(media):
    f = media.parent / "sharegpt.jsonl"
    r = run_ftk(
        "dataset",
        "validate",
        str(f),
        "--media-root",
        str(media),
        "--json",
        "--max-problems",
        "3",
    )
    assert r.returncode == 1
    report = json.loads(r.stdout)
    assert report["valid"] is False
    assert report["problems_shown"] == 3 and len(report["problems"]) == 3
    # one problem per bad line, and sample 5 (gpt, human) also ends with a human turn
    assert report["problems_total"] == len(SHAREGPT_LINES) - 1 + 1
    by_kind = report["files"][0]["problems_by_kind"]
    assert by_kind["media"] == 6 and by_kind["json"] == 1
    assert report["files"][0]["warnings_by_kind"]["duplicate"] == 1  # LLaMA-Factory trains on copies
    first = report["problems"][0]
    assert first["line"] == 2 and first["sample"] == 2 and first["field"] == "conversations"


def test_printed_problems_are_capped_but_all_counted(media):
    f = media.parent / "sharegpt.jsonl"
    r = run_ftk("dataset", "validate", str(f), "--media-root", str(media), "--max-problems", "2")
    assert r.returncode == 1
    assert len([x for x in r.stdout.splitlines() if x.startswith(f"{f}:")]) == 2
    assert "more problem(s) not shown" in r.stdout


def test_bad_json_in_an_array_names_line_and_column(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text(
        '[\n  {"instruction": "a", "output": ""},\n  {"instruction": "b" "output": "c"},\n'
        '  {"instruction": "d", "output": "e"}\n]\n'
    )
    r = run_ftk("dataset", "validate", str(f))
    assert r.returncode == 1
    assert f"{f}:2: sample 1: output: empty answer" in r.stdout  # samples before the break are checked
    assert f"{f}:3: sample 2: json: invalid JSON: Expecting ',' delimiter at line 3 column 23" in r.stdout
    assert "the rest of the file was not checked" in r.stdout


# Small broken files, all validated by one run of the CLI (one per file would cost a process start each).
BROKEN_FILES: dict[str, tuple[bytes, str]] = {
    "trailing.json": (
        b'[{"instruction": "a", "output": "b"},]',
        "sample 2: json: invalid JSON: trailing comma",
    ),
    "unclosed.json": (
        b'[{"instruction": "a", "output": "b"}',
        "sample 2: json: invalid JSON: expecting ',' or ']'",
    ),
    "extra.json": (
        b'[{"instruction": "a", "output": "b"}] x',
        "sample 1: json: invalid JSON: extra data after the closing ']'",
    ),
    "empty.jsonl": (b"\n\n", "file: no samples"),
    "bom.jsonl": (
        b'\xef\xbb\xbf{"instruction": "a", "output": "b"}\n',
        "file: starts with a UTF-8 byte-order mark",
    ),
    "data.yaml": (
        b'{"instruction": "a", "output": "b"}\n',
        "file: extension '.yaml' is not read as JSON",
    ),
    "latin1.jsonl": (
        b'{"instruction": "caf\xe9", "output": "b"}\n',
        "sample 1: json: invalid UTF-8",
    ),
}


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    for name, (data, _) in BROKEN_FILES.items():
        (root / name).write_bytes(data)
    return root, run_ftk("dataset", "validate", *[str(root / n) for n in BROKEN_FILES])


@pytest.mark.parametrize("name", list(BROKEN_FILES))
def test_broken_files_name_the_file_line_and_field(broken_run, name):
    root, r = broken_run
    assert r.returncode == 1
    assert f"{root / name}:1: {BROKEN_FILES[name][1]}" in r.stdout


def test_cutoff_len_with_a_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = [
        "<|im_start|>",
        "<|im_end|>",
        "user",
        "assistant",
        "system",
        "a",
        "b",
        "[UNK]",
    ]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    f = tmp_path / "long.jsonl"
    f.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "' + "a " * 50 + '", "output": "b"}\n')
    r = run_ftk(
        "dataset",
        "validate",
        str(f),
        "--tokenizer",
        str(tmp_path),
        "--cutoff-len",
        "20",
    )
    assert r.returncode == 0, r.stderr  # LLaMA-Factory truncates long samples: a warning
    # sample 1: <|im_start|> user a <|im_end|> <|im_start|> assistant b <|im_end|> = 8 tokens, under the cutoff
    assert f"{f}:1:" not in r.stdout
    assert f"{f}:2: sample 2: sample: 57 tokens (ChatML-formatted) > --cutoff-len 20" in r.stdout
    assert "[warning]" in r.stdout
    strict = run_ftk("dataset", "validate", str(f), "--tokenizer", str(tmp_path), "--cutoff-len", "20", "--strict")
    assert strict.returncode == 1 and "[warning]" not in strict.stdout
    ok = run_ftk(
        "dataset",
        "validate",
        str(f),
        "--tokenizer",
        str(tmp_path / "tokenizer.json"),
        "--cutoff-len",
        "57",
    )
    assert ok.returncode == 0, ok.stdout


def test_missing_file_is_a_usage_error_naming_it(tmp_path):
    r = run_ftk("dataset", "validate", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2
    assert f"{tmp_path / 'nope.jsonl'}: no such file" in r.stderr


@pytest.mark.parametrize("args", [["--format", "xml"], ["--cutoff-len", "10"], ["--bogus"]])
def test_bad_flags_are_usage_errors(args):
    r = run_ftk("dataset", "validate", "data/instructions.jsonl", *args)
    assert r.returncode == 2, r.stdout + r.stderr


def test_forced_format_reports_the_missing_columns(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"instruction": "a", "output": "b"}\n')
    r = run_ftk("dataset", "validate", str(f), "--format", "sharegpt")
    assert r.returncode == 1
    assert f"{f}:1: sample 1: conversations: missing column 'conversations'" in r.stdout


def test_project_data_sets_validate(tmp_path):
    from ftk.dataset.shapes import make_shapes

    make_shapes(tmp_path)
    r = run_ftk(
        "dataset",
        "validate",
        "data/identity.json",
        "data/instructions.jsonl",
        "data/shapes.jsonl",
        "--media-root",
        str(tmp_path),
        "--json",
    )
    assert r.returncode == 0, r.stdout[-3000:]
    files = {Path(x["file"]).name: x for x in json.loads(r.stdout)["files"]}
    assert files["identity.json"]["format"] == "alpaca" and 30 <= files["identity.json"]["samples"] <= 60
    assert files["instructions.jsonl"]["format"] == "alpaca" and files["instructions.jsonl"]["samples"] >= 45
    assert files["shapes.jsonl"]["format"] == "sharegpt"
    assert files["shapes.jsonl"]["entry"]["columns"] == {
        "messages": "messages",
        "images": "images",
    }


def test_truncated_jpeg_is_an_error_at_its_line(tmp_path):
    """Pillow's verify() passes a truncated JPEG; training then stops with "image file is truncated"."""
    from PIL import Image

    Image.effect_noise((256, 256), 64).convert("RGB").save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 9 // 10])  # headers whole: verify() passes it
    with Image.open(tmp_path / "cut.jpg") as im:
        im.verify()
    f = tmp_path / "mm.jsonl"
    rows = [
        {
            "messages": [{"role": "user", "content": "<image>Colour?"}, {"role": "assistant", "content": "Red."}],
            "images": [name],
        }
        for name in ("whole.jpg", "cut.jpg")
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run_ftk("dataset", "validate", str(f), "--media-root", str(tmp_path))
    assert r.returncode == 1
    assert f"{f}:2: sample 2: images[0]: 'cut.jpg' cannot be decoded" in r.stdout
    assert f"{f}:1:" not in r.stdout


def test_token_lengths_are_counted_in_batches_in_file_order(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    f = tmp_path / "many.jsonl"
    long_rows = {5, 2500, 4999}  # across several encode_batch calls
    f.write_text(
        "".join(
            json.dumps({"instruction": "a " * (200 if i in long_rows else 1) + str(i), "output": "a"}) + "\n"
            for i in range(1, 5001)
        )
    )
    r = run_ftk("dataset", "validate", str(f), "--tokenizer", str(tmp_path), "--cutoff-len", "100", "--json")
    report = json.loads(r.stdout)
    assert [p["sample"] for p in report["problems"] if p["kind"] == "length"] == sorted(long_rows)
