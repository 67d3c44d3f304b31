"""Prometheus' configuration for the stack, made from the validated settings alone: the template
docker/prometheus/prometheus.yml.template filled with an explicit set of values. Pure: stage.py writes it."""

from __future__ import annotations

from pathlib import Path

from ftk import conf_template, paths
from ftk.ports import bracketed, local_address
from ftk.settings import Settings, split_list


def template_path() -> Path:
    return paths.project_home() / "docker" / "prometheus" / "prometheus.yml.template"


def rules_dir() -> Path:
    return paths.project_home() / "docker" / "prometheus" / "rules"


def yaml_list(items: list[str]) -> str:
    """'a:1', 'b:2': the inside of a YAML flow list (the settings validated each as host:port)."""
    return ", ".join(f"'{item}'" for item in items)


def targets(s: Settings) -> dict[str, list[str]]:
    """Scrape targets per job: vLLM directly (each replica: through the balancing gateway each scrape would hit
    another one), the gateway's exporters, the GPU exporter."""
    static = split_list(s.prometheus_vllm_targets)
    return {
        # DNS discovery alone finds the replicas; without it, the gateway's upstreams are the default
        "vllm": static or ([] if s.prometheus_vllm_dns_sd else s.vllm_servers),
        "gateway": split_list(s.prometheus_gateway_targets) or [f"127.0.0.1:{s.gateway_metrics_port}"],
        "gpu": split_list(s.prometheus_gpu_targets),
    }


def dns_sd(s: Settings) -> dict[str, str]:
    """The vLLM job's DNS discovery of PROMETHEUS_VLLM_DNS_SD as one YAML line, or nothing (an empty name list
    is refused by Prometheus)."""
    if not s.prometheus_vllm_dns_sd:
        return {"PROMETHEUS_VLLM_DNS_SD": ""}
    host, _, port = s.prometheus_vllm_dns_sd.rpartition(":")
    return {"PROMETHEUS_VLLM_DNS_SD": f"dns_sd_configs: [{{names: ['{host}'], type: A, port: {port}}}]"}


def template_values(s: Settings, rules: Path) -> dict[str, str]:
    jobs = targets(s)
    return {
        "SCRAPE_INTERVAL": s.scrape_interval,
        "PROMETHEUS_RULES_DIR": str(rules),
        "PROMETHEUS_SELF_TARGET": f"{bracketed(local_address(s.prometheus_bind))}:{s.prometheus_port}",
        "PROMETHEUS_VLLM_TARGETS": yaml_list(jobs["vllm"]),
        **dns_sd(s),
        "PROMETHEUS_GATEWAY_TARGETS": yaml_list(jobs["gateway"]),
        "PROMETHEUS_GPU_TARGETS": yaml_list(jobs["gpu"]),
    }


def render(s: Settings, rules: Path | None = None, template: Path | None = None) -> str:
    source = template or template_path()
    text = source.read_text(encoding="utf-8")
    return conf_template.fill(text, template_values(s, rules or rules_dir()), str(source))
