"""`ftk doctor`: checks are discovered without a central list, and each host problem is a row with its fix."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import clean_env, run_ftk
from ftk.doctor import registry
from ftk.settings import Settings


def doctor_json(*args: str, **env: str) -> tuple[int, list[dict[str, str]]]:
    result = run_ftk("doctor", "--json", *args, env=clean_env(**env))
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)["results"]


def rows_named(rows: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    return [r for r in rows if r["check"].startswith(prefix)]


def test_a_new_checks_module_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "fakestage"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "checks_extra.py").write_text(
        textwrap.dedent("""
        from ftk.doctor.registry import check, failed, passed

        @check("widget", stage="zz-test")
        def widget(s):
            return [passed("one", "a"), failed("two", "do this", "b")]

        @check("boom", stage="zz-test")
        def boom(s):
            raise RuntimeError("kaput")
    """)
    )
    (pkg / "helpers.py").write_text("raise SystemExit('non-checks modules must not be imported')")
    monkeypatch.syspath_prepend(str(tmp_path))
    checks = [c for c in registry.discover("fakestage") if c.stage == "zz-test"]
    rows = registry.run(Settings(), checks)
    assert [(r.check, r.status) for r in rows] == [
        ("boom", "FAIL"),
        ("widget: a", "PASS"),
        ("widget: b", "FAIL"),
    ]
    assert "RuntimeError: kaput" in rows[0].detail
    assert rows[2].fix == "do this"
    sys.modules.pop("fakestage.checks_extra", None)


def test_same_name_twice_is_refused() -> None:
    def first(s: Settings) -> registry.Result:
        return registry.passed("x")

    def second(s: Settings) -> registry.Result:
        return registry.passed("y")

    registry.check("dup-test", stage="zz-dup")(first)
    with pytest.raises(ValueError, match="registered twice"):
        registry.check("dup-test", stage="zz-dup")(second)


def test_host_table_and_exit_code_on_this_machine() -> None:
    result = run_ftk("doctor", "--stage", "host")
    assert result.returncode in (0, 1), result.stderr
    for name in ("python", "venv: toolkit", "debian tool: nginx", ".env"):
        assert name in result.stdout
    assert result.returncode == (1 if "FAIL" in result.stdout else 0)


def test_each_stage_lists_the_checks_it_runs() -> None:
    """GPUs, disk and ports are checked by the stage that needs them, each check defined once."""
    _, rows = doctor_json()
    by_stage = {(r["stage"], r["check"]) for r in rows}
    for stage, name in (
        ("download", "cache folder"),
        ("download", "disk"),
        ("train", "base model"),
        ("train", "gpus: TRAIN_GPUS=0"),
        ("train", "disk: TRAIN_MIN_FREE_MB"),
        ("merge", "base model"),
        ("merge", "adapter"),
        ("merge", "disk: MERGED_MODEL_PATH"),
        ("serve", "gpus: TENSOR_PARALLEL_SIZE=1"),
        ("serve", "port: VLLM_PORT=8000"),
        ("serve", "serve launcher"),
        ("gateway", "port: GATEWAY_HTTPS_PORT=8443"),
        ("monitor", "port: PROMETHEUS_PORT=9090"),
    ):
        assert any(st == stage and check.startswith(name) for st, check in by_stage), (stage, name)


def test_missing_venvs_fail_with_make_setup(tmp_path: Path) -> None:
    code, rows = doctor_json("--stage", "host", FTK_VENVS=str(tmp_path), PATH="/usr/bin:/bin")
    assert code == 1
    venv = {r["check"]: r for r in rows_named(rows, "venv")}
    assert venv["venv: toolkit"]["status"] == "FAIL" and "make setup" in venv["venv: toolkit"]["fix"]
    assert venv["venv: train"]["status"] == "FAIL"


def test_a_tool_installed_system_wide_stands_in_for_its_venv(tmp_path: Path) -> None:
    """In the containers there is no .venvs: LLaMA-Factory's CLI on PATH is the train stage's install."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "llamafactory-cli").write_text("#!/bin/sh\n")
    (bindir / "llamafactory-cli").chmod(0o755)
    venvs = tmp_path / "venvs"
    venvs.mkdir()
    _, rows = doctor_json("--stage", "host", FTK_VENVS=str(venvs), PATH=f"{bindir}:/usr/bin:/bin")
    venv = {r["check"]: r for r in rows_named(rows, "venv")}
    assert venv["venv: train"]["status"] == "PASS"
    assert "llamafactory-cli is on PATH" in venv["venv: train"]["detail"]
    assert venv["venv: serve"]["status"] == "FAIL"


def _fake_nvidia_smi(tmp_path: Path, n: int) -> str:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    lines = "".join(f"echo 'GPU {i}: Fake GPU (UUID: GPU-{i})'\n" for i in range(n))
    (bindir / "nvidia-smi").write_text(f"#!/bin/sh\n{lines}")
    (bindir / "nvidia-smi").chmod(0o755)
    return f"{bindir}:{os.environ['PATH']}"


def test_gpu_count_against_tensor_parallel(tmp_path: Path) -> None:
    path = _fake_nvidia_smi(tmp_path, 2)
    code, rows = doctor_json("--stage", "serve", PATH=path, ALLOW_CPU="false", TENSOR_PARALLEL_SIZE="4")
    tp = rows_named(rows, "gpus: TENSOR_PARALLEL_SIZE=4")[0]
    assert code == 1 and tp["status"] == "FAIL"
    assert "needs 4 GPU(s) but 2 visible (nvidia-smi -L lists 2)" in tp["detail"]
    assert "set ALLOW_CPU=true" in tp["fix"]
    _, rows = doctor_json(
        "--stage",
        "serve",
        PATH=path,
        ALLOW_CPU="false",
        TENSOR_PARALLEL_SIZE="2",
        CUDA_VISIBLE_DEVICES="1",
    )
    tp = rows_named(rows, "gpus: TENSOR_PARALLEL_SIZE=2")[0]
    assert tp["status"] == "FAIL" and "CUDA_VISIBLE_DEVICES='1' keeps 1" in tp["detail"]
    _, rows = doctor_json("--stage", "serve", PATH=path, ALLOW_CPU="true", TENSOR_PARALLEL_SIZE="4")
    assert rows_named(rows, "gpus: TENSOR_PARALLEL_SIZE=4")[0]["status"] == "PASS"


def test_port_in_use_names_the_key() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        _, rows = doctor_json("--stage", "serve", VLLM_PORT=str(port))
        _, gateway_rows = doctor_json("--stage", "gateway", GATEWAY_HTTPS_PORT=str(port))
    row = rows_named(rows, f"port: VLLM_PORT={port}")[0]
    assert row["status"] == "FAIL" and f"port {port} on 127.0.0.1 is already in use" in row["detail"]
    assert "set another VLLM_PORT in .env" in row["fix"]
    row = rows_named(gateway_rows, f"port: GATEWAY_HTTPS_PORT={port}")[0]
    assert row["status"] == "FAIL" and f"port {port} on 127.0.0.1 is already in use" in row["detail"]


def test_bad_and_world_readable_env_file_fails(tmp_path: Path) -> None:
    env = tmp_path / "host.env"
    env.write_text("VLLM_PROT=8000\n")
    env.chmod(0o644)
    result = run_ftk(
        "doctor",
        "--json",
        "--stage",
        "host",
        env={**clean_env(), "FTK_ENV_FILE": str(env)},
    )
    assert result.returncode == 1
    rows = {r["check"]: r for r in json.loads(result.stdout)["results"]}
    assert (
        rows[".env"]["status"] == "FAIL" and "VLLM_PROT: unknown key; did you mean VLLM_PORT?" in rows[".env"]["detail"]
    )
    assert rows[".env: permissions"]["status"] == "FAIL" and rows[".env: permissions"]["fix"] == f"chmod 600 {env}"


def test_missing_default_model_fails_with_the_command(tmp_path: Path) -> None:
    code, rows = doctor_json("--stage", "model", MODELS_DIR=str(tmp_path))
    assert code == 1
    assert rows == [
        {
            "stage": "model",
            "check": "default model",
            "status": "FAIL",
            "detail": f"{tmp_path}/SmolLM2-135M-Instruct: {tmp_path}/SmolLM2-135M-Instruct does not exist",
            "fix": "run `ftk model default` (rebuilds it)",
        }
    ]


def test_unknown_stage_is_a_usage_error() -> None:
    result = run_ftk("doctor", "--stage", "nope")
    assert result.returncode == 2 and "unknown stage(s) nope" in result.stderr
