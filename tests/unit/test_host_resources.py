"""The host probes every stage's checks use (ftk.host, ftk.doctor.resources): each verdict names the value, the
setting and the fix; a passing one is a PASS row."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from ftk import host
from ftk.doctor import resources


@pytest.fixture
def smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake nvidia-smi printing the given lines, first on PATH."""

    def make(*lines: str) -> None:
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        body = "".join(f"echo '{line}'\n" for line in lines)
        (bindir / "nvidia-smi").write_text(f"#!/bin/sh\n{body}")
        (bindir / "nvidia-smi").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return make


def test_visible_gpus_counts_gpu_lines_only(smi) -> None:
    smi("GPU 0: H200 (UUID: GPU-0)", "GPU 1: H200 (UUID: GPU-1)", "MIG 1g.18gb Device 0: (UUID: MIG-0)")
    assert host.visible_gpus() == (2, "nvidia-smi -L lists 2")


@pytest.mark.parametrize(("cvd", "count"), [("1", 1), ("0,1", 2), ("", 0), ("-1", 0), ("none", 0)])
def test_cuda_visible_devices_narrows_or_hides(smi, monkeypatch: pytest.MonkeyPatch, cvd: str, count: int) -> None:
    smi("GPU 0: a", "GPU 1: b")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cvd)
    have, how = host.visible_gpus()
    assert have == count
    if count < 2:
        assert f"CUDA_VISIBLE_DEVICES={cvd!r}" in how


def test_no_nvidia_smi_means_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert host.visible_gpus() == (0, "no nvidia-smi")


def test_too_few_gpus_name_need_count_and_fixes(smi) -> None:
    smi("GPU 0: a")
    r = resources.gpus("TENSOR_PARALLEL_SIZE", 2, False, "vLLM (TENSOR_PARALLEL_SIZE=2)")
    assert r.status == "FAIL" and r.item == "TENSOR_PARALLEL_SIZE=2"
    assert r.detail == "vLLM (TENSOR_PARALLEL_SIZE=2) needs 2 GPU(s) but 1 visible (nvidia-smi -L lists 1)"
    assert "lower TENSOR_PARALLEL_SIZE" in r.fix and "ALLOW_CPU=true" in r.fix
    assert resources.gpus("TENSOR_PARALLEL_SIZE", 1, False, "vLLM").status == "PASS"


def test_allow_cpu_passes_and_says_so(smi) -> None:
    smi()
    r = resources.gpus("TRAIN_GPUS", 4, True, "training")
    assert r.status == "PASS" and "ALLOW_CPU=true" in r.detail


def test_zero_gpus_needed_passes_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resources.gpus("TRAIN_GPUS", 0, False, "training").status == "PASS"


def test_disk_names_both_figures_and_the_setting(tmp_path: Path) -> None:
    later = tmp_path / "not" / "made" / "yet"
    assert resources.disk("TRAIN_MIN_FREE_MB", later, 1).status == "PASS"
    assert not later.exists()
    r = resources.disk("TRAIN_MIN_FREE_MB", later, 999_999_999)
    assert r.status == "FAIL" and "need 999999999 MiB" in r.detail and str(later) in r.detail
    assert f"only {host.free_mib(tmp_path)} MiB free" in r.detail and "TRAIN_MIN_FREE_MB" in r.fix


def test_port_in_use_names_port_and_key() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = resources.port_free("VLLM_PORT", "0.0.0.0", port)
    assert r.status == "FAIL" and f"port {port} on 0.0.0.0 is already in use" in r.detail
    assert f"sport = :{port}" in r.fix and "another VLLM_PORT" in r.fix
    assert resources.port_free("VLLM_PORT", "127.0.0.1", port).status == "PASS"


def test_writable_creates_the_folder_and_leaves_no_probe(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert resources.writable("RUNS_DIR", target).status == "PASS"
    assert target.is_dir() and not any(target.iterdir())


def test_unwritable_folders_are_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = resources.writable("MODELSCOPE_CACHE", blocker / "sub")
    assert r.status == "FAIL" and f"cannot create {blocker / 'sub'}" in r.detail and "MODELSCOPE_CACHE" in r.fix
    r = resources.writable("MODELSCOPE_CACHE", Path("/proc"))  # refuses files even for root
    assert r.status == "FAIL" and "/proc is not writable" in r.detail
