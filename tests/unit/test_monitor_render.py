"""The Python renderer of Prometheus' configuration (ftk.monitor): every value from the validated settings, the
result accepted by promtool, bad values refused naming the key. test_compose.py renders compose's variant."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import clean_env, run_ftk
from ftk.console import UserError
from ftk.monitor import prometheus_conf
from ftk.settings import Settings
from ftk.stages import monitor as stage
from pydantic import create_model


def settings(model: type[Settings] = Settings, **values: object) -> Settings:
    return model(_env_file=None, **values)  # type: ignore[call-arg]


def jobs(s: Settings) -> dict[str, list[str]]:
    config = yaml.safe_load(prometheus_conf.render(s))
    return {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}


def test_targets_default_to_vllm_and_the_gateway_exporter_on_loopback() -> None:
    assert jobs(settings(vllm_host="0.0.0.0", vllm_port=8123)) == {
        "prometheus": ["127.0.0.1:9090"],
        "vllm": ["127.0.0.1:8123"],
        "gateway": ["127.0.0.1:9145"],
        "gpu": [],
    }
    s = settings(vllm_upstreams="a:1, [::]:2", prometheus_bind="::", prometheus_gpu_targets="dcgm:9400")
    found = jobs(s)
    assert found["vllm"] == ["a:1", "[::1]:2"] and found["prometheus"] == ["[::1]:9090"]
    assert found["gpu"] == ["dcgm:9400"]
    assert jobs(settings(prometheus_vllm_targets="v:1", prometheus_gateway_targets="g:2,n:3"))["gateway"] == [
        "g:2",
        "n:3",
    ]


CHANGED_DEFAULTS = [  # (field, type, a default other than settings.py's, what the configuration then holds)
    ("scrape_interval", str, "7s", "scrape_interval: 7s"),
    ("prometheus_port", int, 19090, "'127.0.0.1:19090'"),
    ("gateway_metrics_port", int, 19145, "'127.0.0.1:19145'"),
    ("vllm_port", int, 18000, "'127.0.0.1:18000'"),
]


@pytest.mark.parametrize(
    ("field", "kind", "default", "snippet"), CHANGED_DEFAULTS, ids=[c[0] for c in CHANGED_DEFAULTS]
)
def test_a_default_changed_in_settings_reaches_the_configuration(
    field: str, kind: type, default: object, snippet: str
) -> None:
    assert Settings.model_fields[field].default != default
    changed = create_model("Changed", __base__=Settings, **{field: (kind, default)})
    assert snippet in prometheus_conf.render(settings(changed))


def test_the_rendered_configuration_passes_promtool(tmp_path: Path) -> None:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: run `make setup` (scripts/setup.sh debian)")
    s = settings(monitor_dir=str(tmp_path / "mon"), prometheus_gpu_targets="dcgm:9400")
    stage.run(s, "render")
    config = tmp_path / "mon" / "prometheus.yml"
    assert "${" not in config.read_text() and (tmp_path / "mon" / "data").is_dir()
    assert "SUCCESS" in (tmp_path / "mon" / "promtool.log").read_text()
    config.write_text(config.read_text().replace("scrape_interval: 15s", "scrape_interval: fast"))
    with pytest.raises(UserError, match=r"promtool check config refused .*prometheus.yml \(see above\)"):
        stage.promtool_check(config)


def test_a_bad_setting_stops_the_stage_naming_the_key(tmp_path: Path) -> None:
    r = run_ftk("run", "monitor", "--render-only", env=clean_env(MONITOR_DIR=str(tmp_path), SCRAPE_INTERVAL="often"))
    assert r.returncode == 1 and "SCRAPE_INTERVAL='often'" in r.stderr and "write a duration like 15m" in r.stderr
    r = run_ftk("run", "monitor", "--render-only", env=clean_env(MONITOR_DIR=str(tmp_path), PROMETHEUS_PORT="99999"))
    assert r.returncode == 1 and "PROMETHEUS_PORT='99999' is not a port (1-65535); fix it in .env" in r.stderr
    assert not (tmp_path / "prometheus.yml").exists()


def test_the_template_takes_only_the_values_the_renderer_fills() -> None:
    text = prometheus_conf.template_path().read_text()
    values = prometheus_conf.template_values(settings(), prometheus_conf.rules_dir())
    assert set(prometheus_conf.conf_template.PLACEHOLDER_RE.findall(text)) == set(values)


def test_dns_discovery_scrapes_every_replica_of_one_name(tmp_path: Path) -> None:
    """PROMETHEUS_VLLM_DNS_SD (compose `--scale serve=N`): one target per A record, no static vLLM target; without
    it no DNS block at all (Prometheus refuses an empty name list)."""
    config = yaml.safe_load(prometheus_conf.render(settings(prometheus_vllm_dns_sd="serve:8000")))
    vllm = next(job for job in config["scrape_configs"] if job["job_name"] == "vllm")
    assert vllm["dns_sd_configs"] == [{"names": ["serve"], "type": "A", "port": 8000}]
    assert vllm["static_configs"][0]["targets"] == []
    plain = yaml.safe_load(prometheus_conf.render(settings()))
    assert all("dns_sd_configs" not in job for job in plain["scrape_configs"])
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: run `make setup` (scripts/setup.sh debian)")
    stage.run(settings(monitor_dir=str(tmp_path), prometheus_vllm_dns_sd="serve:8000"), "render")
    assert "SUCCESS" in (tmp_path / "promtool.log").read_text()
