"""The serve preflight on hand-made model and adapter folders: each trap is one line naming the value and fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ftk.hf.modelinfo import ModelInfo
from ftk.serve import command, preflight
from ftk.serve.adapters import (
    Adapter,
    check_base,
    check_names,
    check_rank,
    parse_lora_modules,
    vllm_rank,
)
from ftk.settings import Settings
from serve_fakes import PROJ, make_adapter, make_model


def settings(model: Path, **kw: object) -> Settings:
    return Settings(serve_model_path=model, **kw)  # type: ignore[arg-type]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model")


def test_complete_model_and_matching_adapter_pass(tmp_path: Path, model: Path) -> None:
    adapter = make_adapter(tmp_path / "a", model, r=8)
    report = preflight.run(settings(model, lora_modules=f"ident={adapter}"))
    assert report.problems == [] and report.warnings == []
    assert report.max_lora_rank == 8 and [a.name for a in report.adapters] == ["ident"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"config": False}, "config: no config.json"),
        ({"tokenizer": False}, "tokenizer: no tokenizer file"),
        ({"template": False}, "chat template: none in tokenizer_config.json"),
    ],
)
def test_incomplete_model_folder_is_refused(tmp_path: Path, kwargs: dict, needle: str) -> None:
    folder = make_model(tmp_path / "m", **kwargs)
    report = preflight.run(settings(folder))
    (problem,) = report.problems
    assert needle in problem and str(folder) in problem and "(SERVE_MODEL_PATH)" in problem


def test_missing_model_folder_names_the_setting(tmp_path: Path) -> None:
    (problem,) = preflight.run(settings(tmp_path / "nope")).problems
    assert "does not exist (SERVE_MODEL_PATH" in problem


def test_max_model_len_above_positions(model: Path) -> None:
    (problem,) = preflight.run(settings(model, max_model_len=8192)).problems
    assert "MAX_MODEL_LEN=8192" in problem and "max_position_embeddings 4096" in problem
    assert "set MAX_MODEL_LEN=4096 or less" in problem


def test_rank_above_the_limit(tmp_path: Path, model: Path) -> None:
    adapter = make_adapter(tmp_path / "a32", model, r=32)
    (problem,) = preflight.run(settings(model, lora_modules=f"big={adapter}", max_lora_rank=16)).problems
    assert "adapter 'big' has rank r=32" in problem and "MAX_LORA_RANK" in problem and "=32" in problem


def test_rank_zero_means_the_largest_adapter_rank_rounded_to_vllm(tmp_path: Path, model: Path) -> None:
    a8 = make_adapter(tmp_path / "a8", model, r=8)
    a24 = make_adapter(tmp_path / "a24", model, r=24)
    report = preflight.run(settings(model, lora_modules=f"x={a8},y={a24}"))
    assert report.problems == [] and report.max_lora_rank == 32
    assert vllm_rank(1) == 1 and vllm_rank(9) == 16 and vllm_rank(300) == 320


def test_adapter_for_another_base_is_refused_by_config(tmp_path: Path, model: Path) -> None:
    other = make_model(tmp_path / "other", hidden=128)
    adapter = make_adapter(tmp_path / "a", other)
    problems = preflight.run(settings(model, lora_modules=f"x={adapter}")).problems
    assert any("was made for base model" in p and "hidden_size 128 vs 64" in p for p in problems)
    # the LoRA shapes disagree too (this catches hub ids and moved bases)
    assert any("LoRA shapes do not fit" in p for p in problems)


def test_adapter_base_as_hub_id_is_judged_by_shapes(tmp_path: Path, model: Path) -> None:
    other = make_model(tmp_path / "other", hidden=128)
    adapter = make_adapter(tmp_path / "a", other, base="HuggingFaceTB/SmolLM2-135M-Instruct")
    (problem,) = preflight.run(settings(model, lora_modules=f"x={adapter}")).problems
    assert "LoRA shapes do not fit the served model" in problem


def test_moved_copy_of_the_base_passes(tmp_path: Path, model: Path) -> None:
    copy = make_model(tmp_path / "copy")  # same architecture and sizes, another folder
    adapter = make_adapter(tmp_path / "a", copy)
    assert check_base(Adapter.load("x", adapter), ModelInfo.load(model)) == []


def test_missing_target_modules_are_refused(tmp_path: Path, model: Path) -> None:
    adapter = make_adapter(tmp_path / "a", model, prefix="base_model.model.transformer.")
    (problem,) = preflight.run(settings(model, lora_modules=f"x={adapter}")).problems
    assert "target modules do not exist in the served model" in problem and "silently" in problem


def test_duplicate_and_base_named_adapters(tmp_path: Path, model: Path) -> None:
    a = make_adapter(tmp_path / "a", model)
    problems = preflight.run(settings(model, lora_modules=f"x={a} x={a} base={a}")).problems
    assert any("'x' is used twice" in p for p in problems)
    assert any("'base' equals SERVED_MODEL_NAME" in p for p in problems)
    assert check_names(["a", "b"], "base") == []


def test_adapter_folder_problems(tmp_path: Path, model: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = preflight.run(settings(model, lora_modules=f"x={tmp_path / 'nope'} y={empty}")).problems
    assert any("adapter 'x': folder" in p and "does not exist" in p for p in problems)
    assert any("adapter 'y'" in p and "no adapter_config.json" in p for p in problems)


def test_lora_modules_paths_resolve_from_the_project_home() -> None:
    from ftk import paths

    ((name, path),) = parse_lora_modules("ident=runs/default/adapter")
    assert name == "ident" and path == paths.project_home() / "runs/default/adapter"


def test_rank_message_names_the_fix(tmp_path: Path, model: Path) -> None:
    (msg,) = check_rank(Adapter.load("x", make_adapter(tmp_path / "a", model, r=64)), 16)
    assert "MAX_LORA_RANK=64" in msg and "LORA_RANK" in msg


def test_vl_model_without_mm_limits_warns(tmp_path: Path, model: Path) -> None:
    cfg = json.loads((model / "config.json").read_text())
    cfg["vision_config"] = {"depth": 2, "hidden_size": 64}
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "preprocessor_config.json").write_text("{}")  # a vision-language folder is incomplete without it
    report = preflight.run(settings(model))
    assert report.problems == [] and any("LIMIT_MM_PER_PROMPT" in w for w in report.warnings)
    bad = preflight.run(settings(model, limit_mm_per_prompt="image=1")).problems
    assert any("LIMIT_MM_PER_PROMPT='image=1' is not a JSON object" in p for p in bad)


# --- the command line -------------------------------------------------------------------------------------


def test_cpu_command_has_kv_bytes_lora_json_and_no_key(tmp_path: Path, model: Path) -> None:
    adapter = make_adapter(tmp_path / "a", model, r=16)
    s = settings(
        model,
        lora_modules=f"ident={adapter}",
        allow_runtime_lora=True,
        dtype="float32",
        vllm_extra_args="--enforce-eager --seed 1",
    )
    cmd = command.build(s, preflight.run(s), gpus=0)
    argv = cmd.argv
    assert argv[1].endswith("vllm_launcher.py") and argv[2:4] == ["serve", str(model)]
    assert argv[argv.index("--kv-cache-memory-bytes") + 1] == "256M" and "--gpu-memory-utilization" not in argv
    assert argv[argv.index("--max-lora-rank") + 1] == "16"
    spec = json.loads(argv[argv.index("--lora-modules") + 1])
    assert spec == {"name": "ident", "path": str(adapter), "base_model_name": "base"}
    assert argv[-3:] == ["--enforce-eager", "--seed", "1"]
    assert cmd.env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    assert cmd.full()[:2] == ["env", "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True"]
    assert "api-key" not in cmd.display() and cmd.expected_models == ["base", "ident"]


def test_several_adapters_follow_one_lora_modules_flag(tmp_path: Path, model: Path) -> None:
    a, b = make_adapter(tmp_path / "a", model), make_adapter(tmp_path / "b", model)
    s = settings(model, lora_modules=f"x={a} y={b}")
    argv = command.build(s, preflight.run(s), gpus=0).argv
    assert argv.count("--lora-modules") == 1  # argparse keeps only the last of repeated flags
    i = argv.index("--lora-modules")
    assert [json.loads(x)["name"] for x in argv[i + 1 : i + 3]] == ["x", "y"]


def test_gpu_command_uses_memory_fraction_and_tp(model: Path) -> None:
    s = settings(model, tensor_parallel_size=2, gpu_memory_utilization=0.85, kv_cache_dtype="fp8")
    argv = command.build(s, preflight.run(s), gpus=2).argv
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.85"
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[argv.index("--kv-cache-dtype") + 1] == "fp8"
    assert "--kv-cache-memory-bytes" not in argv and "--enable-lora" not in argv


@pytest.mark.parametrize(
    ("knob", "gpus", "extra", "eager_flags"),
    [
        ("auto", 0, "", 1),  # CPU: torch.compile would cost minutes of start-up
        ("auto", 1, "", 0),  # GPU: keep CUDA graphs
        ("true", 1, "", 1),
        ("false", 0, "", 0),
        ("auto", 0, "--enforce-eager", 1),  # never passed twice
    ],
)
def test_enforce_eager_follows_the_host(model: Path, knob: str, gpus: int, extra: str, eager_flags: int) -> None:
    s = settings(model, vllm_enforce_eager=knob, vllm_extra_args=extra)
    assert command.build(s, preflight.run(s), gpus=gpus).argv.count("--enforce-eager") == eager_flags


def _flag(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize(("gpus", "seqs", "expected"), [(0, 0, "32"), (1, 0, "256"), (1, 48, "48"), (0, 8, "8")])
def test_max_num_seqs_follows_the_host_unless_set(model: Path, gpus: int, seqs: int, expected: str) -> None:
    """0 is the measured default of the host's kind: 32 sequences cost 4x TTFT at 64 requests on an H100."""
    s = settings(model, max_num_seqs=seqs)
    assert _flag(command.build(s, preflight.run(s), gpus=gpus).argv, "--max-num-seqs") == expected


@pytest.mark.parametrize(("names", "runtime", "loras", "expected"), [
    ("x", False, 0, "1"),  # one adapter: one slot (4 cost 13% of the throughput on an H100)
    ("x y", False, 0, "2"),
    ("x", True, 0, "4"),  # adapters may be hot-loaded later
    ("x", False, 3, "3"),
])  # fmt: skip
def test_max_loras_is_one_slot_per_adapter_unless_set(
    tmp_path: Path, model: Path, names: str, runtime: bool, loras: int, expected: str
) -> None:
    mods = " ".join(f"{n}={make_adapter(tmp_path / n, model)}" for n in names.split())
    s = settings(model, lora_modules=mods, allow_runtime_lora=runtime, max_loras=loras)
    cmd = command.build(s, preflight.run(s), gpus=1)
    assert _flag(cmd.argv, "--max-loras") == expected
    assert json.loads(command.write_state(s.model_copy(update={"runs_dir": tmp_path}), cmd).read_text())[
        "max_loras"
    ] == int(expected)


def test_vl_command_passes_mm_limits(model: Path) -> None:
    cfg = json.loads((model / "config.json").read_text())
    cfg["vision_config"] = {}
    (model / "config.json").write_text(json.dumps(cfg))
    s = settings(model, limit_mm_per_prompt='{"image":1,"video":0}')
    argv = command.build(s, preflight.run(s), gpus=0).argv
    assert argv[argv.index("--limit-mm-per-prompt") + 1] == '{"image":1,"video":0}'
    assert "--skip-mm-profiling" in argv


def test_serve_venv_knob(tmp_path: Path, model: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    s = settings(model, serve_venv=venv)
    assert command.build(s, preflight.run(s), gpus=0).argv[0] == str(venv / "bin" / "python")
    with pytest.raises(FileNotFoundError, match="SERVE_VENV"):
        command.serve_python(settings(model, serve_venv=tmp_path / "missing"))


def test_serve_model_path_defaults_to_merged_then_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_model(tmp_path / "base")
    merged = tmp_path / "merged"
    s = Settings(model_id=str(base), merged_model_path=merged)  # type: ignore[arg-type]
    assert s.resolved_serve_model_path == base
    make_model(merged)
    assert s.resolved_serve_model_path == merged


def test_state_file_has_no_secret(tmp_path: Path, model: Path) -> None:
    s = settings(model, runs_dir=tmp_path / "runs", vllm_port=18999)
    path = command.write_state(s, command.build(s, preflight.run(s), gpus=0))
    assert path == tmp_path / "runs" / "serve" / "state-18999.json"
    state = command.read_state(s)
    assert state["base_url"] == "http://127.0.0.1:18999" and state["expected_models"] == ["base"]
    assert set(PROJ)  # the fake adapter covers every projection
