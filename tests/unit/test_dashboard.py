"""The Grafana dashboard and provisioning: valid JSON, one datasource, PromQL that Prometheus parses, and only
series that the rules record or exporters provide (the real vLLM metric names are checked in
tests/integration/test_monitor_metrics.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HOME = Path(__file__).resolve().parents[2]
GRAFANA = HOME / "docker" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "ftk-vllm.json"
RULES = sorted((HOME / "docker" / "prometheus" / "rules").glob("*.yml"))


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def recorded() -> set[str]:
    names = set()
    for f in RULES:
        for g in yaml.safe_load(f.read_text())["groups"]:
            names |= {r["record"] for r in g["rules"] if "record" in r}
    return names


def test_dashboard_uses_the_provisioned_datasource() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["panels"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        assert p["datasource"]["uid"] == ds["uid"], p["title"]
        assert p["targets"], p["title"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ftk.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_covers_what_operators_watch() -> None:
    text = " ".join(dashboard_exprs())
    for needle in (
        "generation_tokens",
        "vllm_requests_running",
        "vllm_requests_waiting",
        "time_to_first_token",
        "inter_token_latency",
        "kv_cache_usage",
        "lora_requests_info",
        "ftk_gateway_requests_total",
        "ftk_gateway_model_requests_total",
        "ftk_gateway_tokens_total",
        "DCGM_FI_DEV_GPU_UTIL",
    ):
        assert needle in text, needle


def test_every_recorded_series_used_is_defined() -> None:
    used = {m for e in dashboard_exprs() for m in re.findall(r"\bftk:[a-z0-9_:]+", e)}
    assert used, "the dashboard uses the normalised ftk:* series"
    assert used - recorded() == set()


def test_every_query_parses_in_prometheus(tmp_path: Path) -> None:
    """promtool parses each panel query as a recording rule (Grafana's $instance replaced by a regex)."""
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.fail("promtool is missing: run `make setup` (scripts/setup.sh debian)")
    rules = [{"record": f"check:q{i}", "expr": e.replace("$instance", ".*")} for i, e in enumerate(dashboard_exprs())]
    f = tmp_path / "q.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    res = subprocess.run(
        [promtool, "check", "rules", str(f)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    bad = tmp_path / "bad.yml"
    bad.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "x",
                        "rules": [{"record": "x:y", "expr": "sum(rate(x[5m]"}],
                    }
                ]
            }
        )
    )
    assert subprocess.run([promtool, "check", "rules", str(bad)], check=False, capture_output=True).returncode != 0
