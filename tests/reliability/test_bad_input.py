"""Bad input at every entrypoint: each case runs the real `ftk` command or scripts/*.sh and must end with the
right exit code, a message naming the thing and the fix, no traceback, and no file changed that should not be.
Every case is a row in the reliability ledger (`make reliability` prints the sum)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import HOME, clean_env
from reliability_ledger import record
from rkit import FTK, run_case

MODEL = HOME / "models" / "SmolLM2-135M-Instruct"
GOOD = {"instruction": "What is 2+2?", "input": "", "output": "4"}
MM = {"messages": [{"role": "user", "content": "<image>What shape?"}, {"role": "assistant", "content": "A circle."}]}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with one good image, one corrupted image, and a file outside the root."""
    from PIL import Image

    root = tmp_path_factory.mktemp("bad input é")  # a space and a non-ASCII letter in every path below
    media = root / "media"
    media.mkdir()
    Image.new("RGB", (32, 32), "red").save(media / "red.png")
    (media / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0garbage" * 8)
    (root / "secret.png").write_bytes((media / "red.png").read_bytes())
    os.symlink(root / "secret.png", media / "link.png")
    return root


def _write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _lines(*rows: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# (case, file name, content, exit code, needles in the output)
DATA_CASES = [
    ("empty file", "empty.jsonl", "", 1, ["empty.jsonl", "no samples"]),
    ("truncated jsonl", "cut.jsonl", _lines(GOOD) + '{"instruction": "x", "out', 1, ["cut.jsonl:2", "json"]),
    ("corrupted bytes", "noise.jsonl", b"\xff\xfe\x00\x13binary\x00garbage\n", 1, ["noise.jsonl:1"]),
    ("wrong types", "types.jsonl", _lines({"instruction": 5, "output": ["a"]}), 1, ["types.jsonl:1", "instruction"]),
    ("array of strings", "strings.json", json.dumps(["a", "b"]), 1, ["strings.json:", "sample 1"]),
    ("unknown role", "roles.jsonl", _lines({"messages": [{"role": "bot", "content": "x"}]}), 1, ["roles.jsonl:1"]),
]


@pytest.mark.parametrize(("case", "name", "content", "code", "needles"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_dataset_validate_bad_files(box: Path, case: str, name: str, content, code: int, needles: list[str]) -> None:
    path = _write(box, name, content)
    run_case(
        "input",
        f"dataset validate: {case}",
        [str(FTK), "dataset", "validate", str(path), "--media-root", str(box / "media")],
        code=code,
        needles=needles,
        keep=[path],
    )


MEDIA_CASES = [
    ("media: parent escape", "../secret.png", ["outside the media root"]),
    ("media: absolute path", "/etc/hostname", ["outside the media root"]),
    ("media: symlink out of the root", "link.png", ["outside the media root"]),
    ("media: corrupted image", "broken.png", ["broken.png"]),
    ("media: missing image", "nope.png", ["nope.png"]),
]


@pytest.mark.parametrize(("case", "image", "needles"), MEDIA_CASES, ids=[c[0] for c in MEDIA_CASES])
def test_dataset_media_paths(box: Path, case: str, image: str, needles: list[str]) -> None:
    path = _write(box, f"{case.split(': ')[1].replace(' ', '_')}.jsonl", _lines({**MM, "images": [image]}))
    run_case(
        "input",
        f"dataset validate {case}",
        [str(FTK), "dataset", "validate", str(path), "--media-root", str(box / "media")],
        code=1,
        needles=needles,
        keep=[path],
    )


def test_paths_with_spaces_and_unicode_work(box: Path) -> None:
    path = _write(box, "données ok.jsonl", _lines({**MM, "images": ["red.png"]}))
    run_case(
        "input",
        "dataset validate: path with spaces and unicode",
        [str(FTK), "dataset", "validate", str(path), "--media-root", str(box / "media")],
        code=0,
    )
    info_dir = box / "registry ü"
    run_case(
        "input",
        "dataset register: path with spaces and unicode",
        [
            str(FTK),
            "dataset",
            "register",
            str(path),
            "--name",
            "ok",
            "--dataset-dir",
            str(info_dir),
            "--media-root",
            str(box / "media"),
        ],
        code=0,
    )
    assert "ok" in json.loads((info_dir / "dataset_info.json").read_text())


def test_corrupted_dataset_info_is_refused_and_kept(box: Path) -> None:
    registry = box / "registry-broken"
    registry.mkdir()
    info = _write(registry, "dataset_info.json", '{"identity": {"file_name": "identity.json"')
    data = _write(box, "fine.jsonl", _lines(GOOD))
    run_case(
        "input",
        "dataset register: corrupted dataset_info.json",
        [str(FTK), "dataset", "register", str(data), "--name", "fine", "--dataset-dir", str(registry)],
        code=1,
        needles=["dataset_info.json"],
        keep=[info],
    )


ENV_CASES = [
    ("port not a number", "VLLM_PORT=abc\n", ["VLLM_PORT", ".env:1:"]),
    ("rank zero", "LORA_RANK=0\n", ["LORA_RANK"]),
    ("negative sequences", "MAX_NUM_SEQS=-4\n", ["MAX_NUM_SEQS"]),
    ("memory fraction above 1", "GPU_MEMORY_UTILIZATION=1.5\n", ["GPU_MEMORY_UTILIZATION"]),
    ("unknown key", "LORA_RANKK=8\n", ["LORA_RANKK", "LORA_RANK"]),
    ("bad boolean", "ALLOW_CPU=perhaps\n", ["ALLOW_CPU"]),
    ("bad dtype", "DTYPE=float8\n", ["DTYPE"]),
]


@pytest.mark.parametrize(("case", "text", "needles"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_env_file_bad_values(box: Path, case: str, text: str, needles: list[str]) -> None:
    env_file = _write(box, f"{case.replace(' ', '_')}.env", text)
    env_file.chmod(0o600)
    run_case(
        "input",
        f".env: {case} (ftk env check)",
        [str(FTK), "env", "check", str(env_file)],
        code=1,
        needles=needles,
        keep=[env_file],
    )
    if case != "unknown key":  # a stage reading the settings stops too, naming the key
        run_case(
            "input",
            f".env: {case} (a stage: ftk env export)",
            [str(FTK), "env", "export"],
            code=(1, 2),
            needles=needles[:1],
            env=clean_env(FTK_ENV_FILE=str(env_file)),
            keep=[env_file],
        )


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        ["dataset", "validate", "--bogus"],
        ["dataset", "register", "--bogus"],
        ["env", "check", "--bogus"],
        ["model", "default", "--bogus"],
        ["run", "download", "--bogus"],
        ["run", "train", "--bogus"],
        ["run", "serve", "--bogus"],
        ["doctor", "--bogus"],
        ["config", "render", "train", "--bogus"],
        ["merge", "verify", "--bogus"],
        ["serve", "wait", "--bogus"],
        ["lora", "load", "--bogus"],
        ["plan", "serve", "--bogus"],
        ["smoke", "--bogus"],
        ["eval", "--bogus"],
        ["gateway", "keys", "--bogus"],
        ["train", "--bogus"],
        ["tiny-vl", "build", "--bogus"],
    ],
    ids=lambda a: " ".join(a),
)
def test_unknown_flags_are_usage_errors(argv: list[str]) -> None:
    run_case("input", f"ftk {' '.join(argv)}", [str(FTK), *argv], code=2, needles=["--bogus"])


SCRIPTS = sorted(p.name for p in (HOME / "scripts").glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_flags_on_every_script(script: str) -> None:
    run_case(
        "input",
        f"scripts/{script} --bogus",
        [str(HOME / "scripts" / script), "--bogus"],
        code=(1, 2),
        needles=["--bogus"],
        env=clean_env(FTK_SKIP_APT="1"),
    )


def _copy_model(box: Path, name: str) -> Path:
    if not MODEL.is_dir():
        pytest.fail(f"{MODEL} is missing: run `make setup`")
    out = box / name
    if not out.exists():
        out.mkdir()
        for f in MODEL.iterdir():
            if f.suffix != ".safetensors":
                shutil.copy(f, out / f.name)
            else:
                os.symlink(f, out / f.name)
    return out


def _adapter(box: Path, name: str) -> Path:
    """A LoRA adapter folder for the default model: config and a small valid safetensors (q_proj of layer 0)."""
    import struct

    out = box / name
    out.mkdir()
    (out / "adapter_config.json").write_text(
        json.dumps(
            {
                "base_model_name_or_path": str(MODEL),
                "r": 4,
                "lora_alpha": 8,
                "target_modules": ["q_proj"],
                "peft_type": "LORA",
            }
        )
    )
    header = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": {
            "dtype": "F32",
            "shape": [4, 576],
            "data_offsets": [0, 4 * 4 * 576],
        },
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": {
            "dtype": "F32",
            "shape": [576, 4],
            "data_offsets": [4 * 4 * 576, 2 * 4 * 4 * 576],
        },
    }
    raw = json.dumps(header).encode()
    (out / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * (2 * 4 * 4 * 576))
    return out


def test_adapter_files_corrupted(box: Path) -> None:
    good = _adapter(box, "adapter-ok")
    run_case(
        "input",
        "merge check-base: a good adapter",
        [str(FTK), "merge", "check-base", "--adapter", str(good), "--base", str(MODEL)],
        code=0,
    )
    bad_cfg = _adapter(box, "adapter-bad-config")
    (bad_cfg / "adapter_config.json").write_text('{"r": 4, "target_mod')
    run_case(
        "input",
        "merge check-base: corrupted adapter_config.json",
        [str(FTK), "merge", "check-base", "--adapter", str(bad_cfg), "--base", str(MODEL)],
        code=1,
        needles=["adapter_config.json"],
        keep=[bad_cfg / "adapter_config.json"],
    )
    cut = _adapter(box, "adapter-truncated")
    weights = cut / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    run_case(
        "input",
        "merge check-base: truncated adapter safetensors",
        [str(FTK), "merge", "check-base", "--adapter", str(cut), "--base", str(MODEL)],
        code=1,
        needles=["adapter_model.safetensors"],
        keep=[weights],
    )
    empty = _adapter(box, "adapter-empty-weights")
    (empty / "adapter_model.safetensors").write_bytes(b"")
    run_case(
        "input",
        "merge check-base: empty adapter safetensors",
        [str(FTK), "merge", "check-base", "--adapter", str(empty), "--base", str(MODEL)],
        code=1,
        needles=["adapter_model.safetensors"],
    )


def test_model_folder_corrupted(box: Path) -> None:
    bad = _copy_model(box, "model-bad-config")
    (bad / "config.json").unlink()
    (bad / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "hidden_')
    run_case(
        "input",
        "serve stage checks: corrupted config.json",
        [str(FTK), "run", "serve", "--dry-run"],
        code=1,
        needles=["config.json"],
        env=clean_env(SERVE_MODEL_PATH=str(bad)),
        keep=[bad / "config.json"],
    )
    run_case(
        "input",
        "download: MODEL_ID folder with corrupted config.json",
        [str(FTK), "run", "download"],
        code=1,
        needles=["config.json"],
        env=clean_env(MODEL_ID=str(bad)),
    )
    cut = _copy_model(box, "model-cut-weights")
    weights = next(cut.glob("*.safetensors"))
    weights.unlink()
    weights.write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"a":')
    run_case(
        "input",
        "download: truncated model safetensors",
        [str(FTK), "run", "download"],
        code=1,
        needles=[weights.name],
        env=clean_env(MODEL_ID=str(cut)),
    )
    run_case(
        "input",
        "train.sh: MODEL_ID folder that does not exist",
        [str(HOME / "scripts" / "train.sh"), "--preflight-only"],
        code=1,
        needles=["nowhere"],
        env=clean_env(MODEL_ID=str(box / "nowhere"), RUNS_DIR=str(box / "runs")),
    )


def test_config_render_unknown_key_names_the_closest(box: Path) -> None:
    run_case(
        "input",
        "config render: unknown LLaMA-Factory key",
        [str(FTK), "config", "render", "train", "--set", "lora_rnk=8"],
        code=1,
        needles=["lora_rnk", "lora_rank"],
        env=clean_env(RUNS_DIR=str(box / "runs")),
    )


def test_smoke_against_nothing_is_a_clear_failure(box: Path) -> None:
    key = _write(box, "smoke.key", "not-a-real-key\n")
    key.chmod(0o600)
    argv = [str(FTK), "smoke", "--base-url", "http://127.0.0.1:9/v1", "--api-key-file", str(key), "--timeout", "5"]
    run_case("input", "smoke: nothing listening", argv, code=1, needles=["127.0.0.1:9"])


def _peak_rss_mib(argv: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    import psutil

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        with contextlib.suppress(psutil.NoSuchProcess):
            peak = max(peak, watched.memory_info().rss)
        time.sleep(0.2)
    return proc.returncode, peak / 2**20, proc.stdout.read() if proc.stdout else ""


@pytest.mark.soak
def test_two_gigabyte_jsonl_streams_in_flat_memory(tmp_path: Path) -> None:
    """A 2 GB JSONL (about 13M samples) is validated in the memory a small one takes."""
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    row = '{"instruction": "question %d with some padding text to make the line longer", "input": "", "output": "%d"}\n'
    small.write_text("".join(row % (i, i) for i in range(10_000)))
    with big.open("w") as f:
        i = 0
        while f.tell() < 2 * 2**30:
            f.write("".join(row % (n, n) for n in range(i, i + 100_000)))
            i += 100_000
    argv = [str(FTK), "dataset", "validate", "--media-root", str(tmp_path), "--max-problems", "5"]
    code_s, rss_s, _ = _peak_rss_mib([*argv, str(small)], clean_env())
    code_b, rss_b, out = _peak_rss_mib([*argv, str(big)], clean_env())
    flat = code_s == 0 and code_b == 0 and rss_b < rss_s * 1.25
    record(
        "input",
        "dataset validate: 2 GB JSONL streamed",
        "works" if flat else "failed",
        samples=i,
        rss_small_mib=round(rss_s),
        rss_big_mib=round(rss_b),
    )
    assert flat, (code_s, code_b, rss_s, rss_b, out[-2000:])
