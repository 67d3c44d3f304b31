"""Prometheus rules and config: promtool accepts them, every alert fires in its unit test, and the tests can fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HOME = Path(__file__).resolve().parents[2]
PROM = HOME / "docker" / "prometheus"
RULES = sorted((PROM / "rules").glob("*.yml"))
TESTS = PROM / "tests" / "rules_test.yml"


def promtool() -> str:
    path = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if not path:
        pytest.fail("promtool is missing: run `make setup` (scripts/setup.sh debian installs prometheus)")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def alerts_in(files: list[Path]) -> set[str]:
    names = set()
    for f in files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            names |= {r["alert"] for r in group["rules"] if "alert" in r}
    return names


def test_rules_pass_promtool_check() -> None:
    res = run("check", "rules", *map(str, RULES))
    assert res.returncode == 0, res.stdout + res.stderr


def test_rule_unit_tests_pass() -> None:
    res = run("test", "rules", str(TESTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_every_alert_fires_in_a_test_and_is_quiet_in_another() -> None:
    spec = yaml.safe_load(TESTS.read_text())
    fired, quiet = set(), set()
    for case in spec["tests"]:
        for a in case.get("alert_rule_test", []):
            (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
    expected = alerts_in(RULES)
    assert expected >= {
        "EndpointDown",
        "VllmRequestsWaitingHigh",
        "VllmKvCacheUsageHigh",
        "VllmTimeToFirstTokenP95High",
        "VllmInterTokenLatencyP95High",
        "VllmErrorRateHigh",
        "GatewayErrorRateHigh",
        "GatewayRateLimitedHigh",
        "VllmPreemptions",
    }
    assert expected - fired == set(), "alerts never shown firing"
    assert expected - quiet == set(), "alerts never shown quiet"


def test_both_metric_spellings_are_tested() -> None:
    text = TESTS.read_text()
    assert "'vllm:num_requests_waiting" in text and "'vllm_num_requests_waiting" in text


@pytest.mark.parametrize(("old", "new"), [("> 10", "> 1000"), ("> 0.9", "> 0.999"), ("> 2", "> 20")])
def test_unit_tests_catch_a_changed_threshold(tmp_path: Path, old: str, new: str) -> None:
    """The promtool tests are not vacuous: raising a threshold makes them fail."""
    shutil.copytree(PROM / "rules", tmp_path / "rules")
    shutil.copytree(PROM / "tests", tmp_path / "tests")
    rules = tmp_path / "rules" / "vllm.yml"
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new, 1))
    res = run("test", "rules", str(tmp_path / "tests" / "rules_test.yml"))
    assert res.returncode != 0, "promtool tests still pass with a changed threshold"


def test_rendered_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTK_")}
    env.update(
        FTK_HOME=str(HOME),
        FTK_ENV_FILE="/nonexistent",
        NO_COLOR="1",
        MONITOR_DIR=str(tmp_path),
        VLLM_UPSTREAMS="127.0.0.1:8000,127.0.0.1:8001",
        PROMETHEUS_GPU_TARGETS="dcgm:9400",
    )
    res = subprocess.run(
        [str(HOME / "scripts" / "monitor.sh"), "--render-only"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs["vllm"] == ["127.0.0.1:8000", "127.0.0.1:8001"]
    assert jobs["gpu"] == ["dcgm:9400"]
    assert run("check", "config", str(tmp_path / "prometheus.yml")).returncode == 0


def test_bad_target_is_refused_with_the_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTK_")}
    env.update(
        FTK_HOME=str(HOME),
        FTK_ENV_FILE="/nonexistent",
        NO_COLOR="1",
        MONITOR_DIR=str(tmp_path),
        PROMETHEUS_VLLM_TARGETS="http://x:80/metrics",
    )
    res = subprocess.run(
        [str(HOME / "scripts" / "monitor.sh"), "--render-only"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert res.returncode == 1
    assert "PROMETHEUS_VLLM_TARGETS" in res.stderr and "host:port" in res.stderr
