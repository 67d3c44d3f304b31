"""scripts/gpu-check.sh and `ftk gpu-check`: the report a GPU run writes, its checks, and the argument handling.

What needs a GPU (the end-to-end run) is the last test, skipped with its reason on a CPU host; everything before it
runs the same code paths a GPU run takes (report building, the KV-cache 5% check, the tables, vLLM's result and
log parsing, the random model builder, the bench server's environment) on CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, VENVS, clean_env, run_ftk, venv_bin
from ftk.gpucheck import random_text, vllm_bench
from ftk.gpucheck.report import Comparison, Report, Step, decode_limit, kv_check, render
from ftk.gpucheck.runner import Options, Runner, median_figures
from ftk.serve.served import NotReady, Served
from rich.console import Console

SCRIPT = HOME / "scripts" / "gpu-check.sh"


def _env(**extra: str) -> dict[str, str]:
    return clean_env(FTK_VENVS=str(VENVS), **extra)


def _report() -> Report:
    r = Report(host={"gpu": "1 x NVIDIA H200", "driver": "580.159.04"}, versions={"serve": {"vllm": "0.26.0"}})
    r.record(Step("train", True, 12.0, "1311 tokens/s"))
    comp = Comparison("serve: merged vs LoRA", ["merged", "base + LoRA"])
    comp.add("output tokens/s @ 1", 539.0, 237.0)
    comp.add("TTFT median ms @ 1", 13.6, None)
    r.put(comp)
    r.check(kv_check(4_036_152, 4_025_504))
    return r


def test_kv_check_passes_within_five_percent_and_fails_beyond() -> None:
    assert kv_check(4_036_152, 4_025_504).ok  # the H200 run: +0.3%
    assert kv_check(105, 100).ok and kv_check(95, 100).ok  # the limit itself passes
    over, under = kv_check(106, 100), kv_check(94, 100)
    assert not over.ok and "+6.0%" in over.detail
    assert not under.ok and "-6.0%" in under.detail
    missing = kv_check(100, None)
    assert not missing.ok and "KV cache size" in missing.detail  # not measured is a failure, never a pass


def test_decode_limit_is_bandwidth_over_weight_bytes() -> None:
    assert decode_limit(2_000_000_000, 4.8e12) == pytest.approx(2400.0)
    with pytest.raises(ValueError):
        decode_limit(0, 4.8e12)


def test_report_round_trips_through_json_and_keeps_every_figure(tmp_path: Path) -> None:
    r = _report()
    path = tmp_path / "report.json"
    r.write(path)
    data = json.loads(path.read_text())
    assert data["host"]["gpu"] == "1 x NVIDIA H200" and data["versions"]["serve"]["vllm"] == "0.26.0"
    assert data["figures"]["serve: merged vs LoRA | output tokens/s @ 1 | base + LoRA"] == 237.0
    assert data["figures"]["serve: merged vs LoRA | TTFT median ms @ 1 | base + LoRA"] is None
    again = Report.load(path)
    assert again.as_dict()["comparisons"] == data["comparisons"] and again.ok
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, no temporary left


def test_a_rerun_step_replaces_the_earlier_one_and_a_failure_fails_the_report() -> None:
    r = _report()
    r.record(Step("serve", False, 1.0, "vLLM not ready"))
    assert not r.ok
    r.record(Step("serve", True, 90.0, "healthy"))  # a later partial run of the same work folder
    assert [s.name for s in r.steps] == ["train", "serve"] and r.ok
    r.check(kv_check(200, 100))
    assert not r.ok


def test_comparison_refuses_a_row_of_the_wrong_width() -> None:
    comp = Comparison("t", ["a", "b"])
    with pytest.raises(ValueError, match="2 columns"):
        comp.add("x", 1.0)


def test_tables_show_ratios_and_the_closing_line() -> None:
    console = Console(record=True, width=160, no_color=True)
    render(_report(), console)
    text = console.export_text()
    assert "0.44x" in text  # 237 / 539
    assert "1 x NVIDIA H200" in text and "+0.3%" in text
    assert text.strip().endswith("2 passed, 0 failed")


def test_report_command_prints_a_saved_report_and_exits_1_on_a_failure(tmp_path: Path) -> None:
    r = _report()
    r.write(tmp_path / "ok.json")
    result = run_ftk("gpu-check", "report", str(tmp_path / "ok.json"))
    assert result.returncode == 0, result.stderr
    assert "serve: merged vs LoRA" in result.stdout and "2 passed, 0 failed" in result.stdout
    r.check(kv_check(110, 100))
    r.write(tmp_path / "bad.json")
    result = run_ftk("gpu-check", "report", str(tmp_path / "bad.json"))
    assert result.returncode == 1 and "1 failed" in result.stdout
    (tmp_path / "junk.json").write_text('{"schema": 99}')
    result = run_ftk("gpu-check", "report", str(tmp_path / "junk.json"))
    assert result.returncode == 1 and "not a gpu-check report" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--phase", "train,bogus"], "--phase"),
        (["--concurrency", "1,x"], "--concurrency"),
        (["--concurrency", "0"], "--concurrency"),
        (["--size", "7b"], "--size"),
        (["--train-repeats", "0"], "--train-repeats"),
    ],
)
def test_run_refuses_bad_options_naming_the_flag(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_ftk("gpu-check", "run", "--work", str(tmp_path), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert not (tmp_path / "report.json").exists()  # refused before anything ran


def test_script_help_unknown_flag_and_missing_value() -> None:
    ok = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, env=_env(), check=False)
    assert ok.returncode == 0 and "--phase" in ok.stdout and "KV check" in ok.stdout
    bad = subprocess.run([str(SCRIPT), "--bogus"], capture_output=True, text=True, env=_env(), check=False)
    assert bad.returncode == 2 and "unknown option '--bogus'" in bad.stderr
    missing = subprocess.run([str(SCRIPT), "--phase"], capture_output=True, text=True, env=_env(), check=False)
    assert missing.returncode == 2 and "--phase needs a value" in missing.stderr


def test_script_refuses_a_host_without_a_gpu(tmp_path: Path) -> None:
    if shutil.which("nvidia-smi"):
        pytest.skip("this host has nvidia-smi: the no-GPU refusal is tested on CPU hosts")
    r = subprocess.run([str(SCRIPT), "--work", str(tmp_path)], capture_output=True, text=True, env=_env(), check=False)
    assert r.returncode == 1 and "gpu-check needs 1 GPU(s) but 0 visible" in r.stderr
    assert not (tmp_path / "report.json").exists()


def test_bench_result_parsing_and_the_kv_line(tmp_path: Path) -> None:
    data = {
        "completed": 16,
        "failed": 0,
        "output_throughput": 539.06,
        "request_throughput": 4.21,
        "median_ttft_ms": 13.6,
        "p99_ttft_ms": 20.1,
        "median_tpot_ms": 1.76,
    }
    r = vllm_bench.parse_result(data, 1)
    assert r.output_tokens_per_s == 539.06 and r.batch1_tokens_per_s == pytest.approx(568.2, abs=0.1)
    with pytest.raises(ValueError, match="failed"):
        vllm_bench.parse_result({**data, "failed": 3}, 1)
    with pytest.raises(ValueError, match="median_tpot_ms"):
        vllm_bench.parse_result({k: v for k, v in data.items() if k != "median_tpot_ms"}, 1)
    log = tmp_path / "vllm.log"
    log.write_text(
        "(EngineCore pid=1) INFO [kv_cache_utils.py:1087] GPU KV cache size: 4,025,504 tokens\n"
        "INFO Graph capturing finished in 7.3 secs\n"
    )
    assert vllm_bench.kv_cache_tokens(log) == 4_025_504
    assert vllm_bench.graph_capture_seconds(log) == 7.3
    assert vllm_bench.kv_cache_tokens(tmp_path / "absent.log") is None


def test_bench_argv_sends_fixed_lengths_and_the_adapters(tmp_path: Path) -> None:
    argv = vllm_bench.bench_argv(
        ["python", "launcher.py"], "http://127.0.0.1:1", "a1", tmp_path, 64, 384, tmp_path / "r.json", 512, 128,
        lora=["a1", "a2", "a3", "a4"],
    )  # fmt: skip
    joined = " ".join(argv)
    assert argv[2:4] == ["bench", "serve"] and "--ignore-eos" in argv
    assert "--random-input-len 512 --random-output-len 128" in joined and "--max-concurrency 64" in joined
    assert joined.endswith("--lora-modules a1 a2 a3 a4")


def test_random_model_sizes() -> None:
    assert random_text.parameters("1b") == 1_174_472_704
    cfg = random_text.config_dict("1b")
    assert cfg["head_dim"] * cfg["num_attention_heads"] == cfg["hidden_size"]
    with pytest.raises(ValueError, match="--size"):
        random_text.config_dict("7b")


def test_random_model_answers_in_text(tmp_path: Path) -> None:
    """Greedy output of the random model decodes to text: `ftk smoke` read empty answers before the fix."""
    py = venv_bin("train", "python")
    out = tmp_path / "m"
    code = (
        "import json, sys; from transformers import AutoTokenizer, AutoModelForCausalLM\n"
        "from ftk.gpucheck import random_text\n"
        "m = random_text.build(__import__('pathlib').Path(sys.argv[1]), 'small')\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1]); model = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "ids = t.apply_chat_template([{'role': 'user', 'content': 'Who are you?'}], add_generation_prompt=True,"
        " return_tensors='pt', return_dict=True)\n"
        "o = model.generate(**ids, max_new_tokens=12, do_sample=False)[0, ids['input_ids'].shape[1]:]\n"
        "print(json.dumps([max(o.tolist()), len(t), t.decode(o, skip_special_tokens=True)]))\n"
    )
    r = subprocess.run(
        [str(py), "-c", code, str(out)],
        capture_output=True, text=True, env=clean_env(PYTHONPATH=str(HOME / "toolkit" / "src")), timeout=300,
        check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    top, size, text = json.loads(r.stdout.strip().splitlines()[-1])
    assert top < size, "greedy picked a padding row the tokenizer cannot decode"
    assert text.strip(), r.stdout
    assert json.loads((out / "ftk-random-model.json").read_text())["template"] == "qwen"


def test_served_takes_the_callers_allow_cpu(tmp_path: Path) -> None:
    """Served started scripts/serve.sh with its own ALLOW_CPU=true and crashed when the caller gave one."""
    env = clean_env(ALLOW_CPU="false", SERVE_MODEL_PATH=str(tmp_path / "no-model"), FTK_HOME=str(HOME))
    target = Served("t", "merged", env, tmp_path)
    with pytest.raises(NotReady, match="vLLM not ready"):
        target.start(timeout=60)
    log = (tmp_path / "t.log").read_text()
    if not shutil.which("nvidia-smi"):
        assert "needs 1 GPU(s) but 0 visible" in log  # the caller's ALLOW_CPU=false reached serve.sh


@pytest.mark.skipif(
    not shutil.which("nvidia-smi"), reason="needs an NVIDIA GPU (nvidia-smi): gpu-check runs on GPU hosts"
)
def test_gpu_check_end_to_end_on_a_gpu(tmp_path: Path) -> None:
    r = subprocess.run(
        [str(SCRIPT), "--work", str(tmp_path), "--size", "small", "--steps", "4", "--concurrency", "1,4", "--no-vl"],
        capture_output=True, text=True, env=_env(), timeout=1800, check=False,
    )  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    assert r.returncode == 0, r.stdout[-4000:]
    assert report["ok"] and report["host"]["gpu"] != "none visible (nvidia-smi)"


def test_skip_leaves_out_the_named_steps_and_the_report_stays_ok(tmp_path: Path) -> None:
    """A time-boxed host leaves steps out with --skip: they are rows of the report, not failures."""
    runner = Runner(Options(work=tmp_path, report=tmp_path / "report.json", skip=("QLoRA",)))
    ran = []
    for name in ("train: scripts/train.sh (4-bit QLoRA, bitsandbytes)", "train: scripts/train.sh (bf16 LoRA, SDPA)"):
        with runner.step(name) as d:
            if not runner.skipped(d):
                ran.append(name)
    assert ran == ["train: scripts/train.sh (bf16 LoRA, SDPA)"]
    assert runner.report.steps[0].detail == "skipped: --skip QLoRA" and runner.report.ok
    assert json.loads((tmp_path / "report.json").read_text())["steps"][0]["detail"] == "skipped: --skip QLoRA"


def test_a_skipped_step_past_the_deadline_is_skipped_not_failed(tmp_path: Path) -> None:
    """On the H100 a call with --skip QLoRA and --deadline-s reported QLoRA as "not started: --deadline reached",
    a failure, though it was left out on purpose; a step not asked to skip still fails past the deadline."""
    runner = Runner(Options(work=tmp_path, report=tmp_path / "report.json", skip=("QLoRA",), deadline=1.0))
    for name in ("train: scripts/train.sh (4-bit QLoRA, bitsandbytes)", "train: scripts/train.sh (bf16 LoRA, SDPA)"):
        with runner.step(name) as d:
            assert runner.skipped(d)
    details = {s.name: (s.ok, s.detail) for s in runner.report.steps}
    assert details["train: scripts/train.sh (4-bit QLoRA, bitsandbytes)"] == (True, "skipped: --skip QLoRA")
    assert details["train: scripts/train.sh (bf16 LoRA, SDPA)"] == (False, "not started: --deadline reached")


def test_repeated_train_runs_report_each_figures_median() -> None:
    """--train-repeats N: a shared GPU host varies by a fifth run to run; the table shows the median of each."""
    runs = [
        {"effective_tokens_per_sec": 1684.0, "train_runtime": 22.3, "peak": None},
        {"effective_tokens_per_sec": 1300.0, "train_runtime": 28.0, "peak": 3625.0},
        {"effective_tokens_per_sec": 1500.0, "train_runtime": 25.0, "peak": 3625.0},
    ]
    assert median_figures(runs) == {"effective_tokens_per_sec": 1500.0, "train_runtime": 25.0, "peak": 3625.0}
    assert median_figures([{"peak": None}]) == {"peak": None}


def test_a_later_call_that_skips_a_step_keeps_what_the_earlier_one_measured(tmp_path: Path) -> None:
    """Phases run as separate calls on a time-boxed host: the second call's --skip of a step the first one ran
    replaced its figures with "skipped" (seen on the H100); a skip now adds only what did not run before."""
    report = tmp_path / "report.json"
    first = Runner(Options(work=tmp_path, report=report))
    with first.step("train: plain llamafactory-cli train (bf16 LoRA, SDPA)") as d:
        d["detail"] = "1684 tokens/s"
    second = Runner(Options(work=tmp_path, report=report, skip=("plain", "QLoRA")))
    second.report = Report.load(report)  # what run() does when the report exists
    for name in ("train: plain llamafactory-cli train (bf16 LoRA, SDPA)", "train: scripts/train.sh (4-bit QLoRA)"):
        with second.step(name) as d:
            assert second.skipped(d)
    details = {s["name"]: s["detail"] for s in json.loads(report.read_text())["steps"]}
    assert details["train: plain llamafactory-cli train (bf16 LoRA, SDPA)"] == "1684 tokens/s"
    assert details["train: scripts/train.sh (4-bit QLoRA)"] == "skipped: --skip QLoRA"
