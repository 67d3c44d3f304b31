"""The kustomize overlay of configs/kubernetes/base, made from the validated settings alone: the ftk-env
ConfigMap (the settings every pod reads, as `ftk env export` has them), images, replica bounds, probe periods,
GPU counts, the autoscaler's thresholds and the PrometheusRule from docker/prometheus/rules. Pure: {file: text};
the command writes them. Secrets are never part of it: the pods read the Secrets ftk-secrets and ftk-tls."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ftk import paths
from ftk.console import UserError
from ftk.settings import Settings

NGINX_IMAGE = "nginx:1.28.0-bookworm"  # the gateway image of compose.yaml (a test keeps them equal)
IMAGES = ("ftk-serve", "ftk-toolkit", "ftk-train")
TEMPLATES = "nginx-templates"  # the overlay's copy of docker/nginx/templates
STARTUP_PERIOD_S = 10  # the vLLM startupProbe's periodSeconds in the base
GRACE_MARGIN_S = 60  # beyond PROXY_READ_TIMEOUT, for the preStop wait and vLLM's own shutdown
DURATION_RE = re.compile(r"(\d+)(h|m|s)")
# the pods set these themselves (container paths, ports, the rendezvous): the host's values would be wrong there
POD_OWNED = {
    "VLLM_HOST", "VLLM_PORT", "VLLM_API_KEY_FILE", "VLLM_UPSTREAMS", "GATEWAY_PREFIX", "GATEWAY_BIND",
    "GATEWAY_INTERNAL_BIND", "GATEWAY_HTTPS_PORT", "GATEWAY_HTTP_PORT", "GATEWAY_INTERNAL_PORT", "TLS_CERT",
    "TLS_KEY", "API_KEYS_FILE", "FORCE_TORCHRUN", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "KUBE_OUT_DIR",
}  # fmt: skip


def nginx_templates() -> Path:
    return paths.project_home() / "docker" / "nginx" / "templates"


def template_files(root: Path | None = None) -> dict[str, Path]:
    """{ConfigMap key: file} of docker/nginx/templates; a key has no "/" (snippets/x becomes snippets__x)."""
    top = root or nginx_templates()
    return {str(f.relative_to(top)).replace("/", "__"): f for f in sorted(top.rglob("*.template"))}


def base_dir() -> Path:
    return paths.project_home() / "configs" / "kubernetes" / "base"


def rules_dir() -> Path:
    return paths.project_home() / "docker" / "prometheus" / "rules"


def duration_seconds(value: str, key: str) -> int:
    """A compose duration (15m, 1h30m, 90s) in seconds."""
    parts = DURATION_RE.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        raise UserError(f"{key}='{value}' is not a duration like 15m, 1h30m or 900s; fix it in .env")
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


def env_values(s: Settings) -> dict[str, str]:
    """The ftk-env ConfigMap: every set setting as the pods' environment (None stays unset: the recipe's own)."""
    out = {}
    for name in Settings.model_fields:
        key, value = name.upper(), getattr(s, name)
        if value is None or key in POD_OWNED:
            continue
        out[key] = str(value)
    return out


def prometheus_rule(rules: Path | None = None) -> dict[str, Any]:
    """A PrometheusRule whose groups are those of docker/prometheus/rules/*.yml, unchanged."""
    groups: list[Any] = []
    for file in sorted((rules or rules_dir()).glob("*.yml")):
        groups += yaml.safe_load(file.read_text(encoding="utf-8"))["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "ftk-rules"},
        "spec": {"groups": groups},
    }


def images(s: Settings) -> list[dict[str, str]]:
    prefix = f"{s.kube_image_registry.rstrip('/')}/" if s.kube_image_registry else ""
    out = [{"name": name, "newName": prefix + name, "newTag": s.ftk_image_tag} for name in IMAGES]
    name, _, tag = NGINX_IMAGE.partition(":")
    return [*out, {"name": "nginx", "newName": name, "newTag": tag}]


def json_patch(kind: str, name: str, ops: list[tuple[str, Any]]) -> dict[str, Any]:
    group_version = {"Deployment": "apps/v1", "Job": "batch/v1", "ScaledObject": "keda.sh/v1alpha1"}[kind]
    group, _, version = group_version.rpartition("/")
    return {
        "target": {"group": group, "version": version, "kind": kind, "name": name},
        "patch": yaml.safe_dump([{"op": "replace", "path": p, "value": v} for p, v in ops], sort_keys=False),
    }


def patches(s: Settings) -> list[dict[str, Any]]:
    start = duration_seconds(s.serve_start_period, "SERVE_START_PERIOD")
    items = [{"key": key, "path": key.replace("__", "/")} for key in template_files()]
    templates = {"name": "nginx-templates", "configMap": {"name": "ftk-nginx-templates", "items": items}}
    grace = s.proxy_read_timeout + GRACE_MARGIN_S
    vllm = "/spec/template/spec/containers/0"
    gpu = "nvidia.com~1gpu"  # "/" escaped as JSON pointer wants
    return [
        json_patch(
            "Deployment",
            "vllm",
            [
                (f"{vllm}/startupProbe/failureThreshold", max(1, math.ceil(start / STARTUP_PERIOD_S))),
                (f"{vllm}/resources/limits/{gpu}", s.tensor_parallel_size),
                ("/spec/template/spec/terminationGracePeriodSeconds", grace),
            ],
        ),
        json_patch("Deployment", "gateway", [("/spec/template/spec/terminationGracePeriodSeconds", grace)]),
        {
            "target": {"group": "apps", "version": "v1", "kind": "Deployment", "name": "gateway"},
            "patch": yaml.safe_dump([{"op": "add", "path": "/spec/template/spec/volumes/-", "value": templates}]),
        },
        json_patch(
            "ScaledObject",
            "vllm",
            [
                ("/spec/minReplicaCount", s.serve_min_replicas),
                ("/spec/maxReplicaCount", s.serve_max_replicas),
                ("/spec/triggers/0/metadata/serverAddress", s.kube_prometheus_url),
                ("/spec/triggers/0/metadata/threshold", str(s.autoscale_waiting_per_replica)),
                ("/spec/triggers/1/metadata/serverAddress", s.kube_prometheus_url),
                ("/spec/triggers/1/metadata/threshold", str(s.autoscale_kv_cache_ratio)),
            ],
        ),
        json_patch(
            "Job",
            "ftk-train",
            [
                ("/spec/completions", s.nnodes),
                ("/spec/parallelism", s.nnodes),
                (f"/spec/template/spec/containers/0/resources/limits/{gpu}", s.nproc_per_node),
            ],
        ),
    ]


def check(s: Settings) -> None:
    if s.serve_min_replicas > s.serve_max_replicas:
        raise UserError(
            f"SERVE_MIN_REPLICAS={s.serve_min_replicas} is above SERVE_MAX_REPLICAS={s.serve_max_replicas}; "
            "lower the first or raise the second in .env"
        )


def render(s: Settings, out: Path, base: Path | None = None) -> dict[str, str]:
    """{file name in `out`: text}: kustomization.yaml and the PrometheusRule."""
    check(s)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": s.kube_namespace,
        "resources": [os.path.relpath(base or base_dir(), out), "prometheusrule.yaml"],
        "configMapGenerator": [
            {"name": "ftk-env", "literals": [f"{k}={v}" for k, v in env_values(s).items()]},
            {"name": "ftk-nginx-templates", "files": [f"{k}={TEMPLATES}/{k}" for k in template_files()]},
        ],
        "images": images(s),
        "patches": patches(s),
    }
    head = "# generated by `ftk kube render` from the settings (.env); edit .env and render again\n"
    copies = {f"{TEMPLATES}/{k}": f.read_text(encoding="utf-8") for k, f in template_files().items()}
    return {
        "kustomization.yaml": head + yaml.safe_dump(kustomization, sort_keys=False),
        "prometheusrule.yaml": head + yaml.safe_dump(prometheus_rule(), sort_keys=False),
        **copies,  # kustomize reads generator files only inside the overlay: copies of docker/nginx/templates
    }
