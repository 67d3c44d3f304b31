"""The compose path for real, as a user runs it on a CPU host: a real Docker engine builds the CPU images, then
`init`, `--profile download|train|merge up`, `--profile serve up -d --wait`, `--profile monitor up -d --wait`,
clients from the host through the published gateway port, and `down`.

The project is a copy of this checkout owned by an unprivileged uid (TEST_UID), as a user's clone is: `init`
must find that user, and everything the containers write must belong to it. The engine comes from
`scripts/setup.sh docker` (run by `make test` and `make compose-test`); a missing engine fails, never skips.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import openai
import pytest
from chat_clients import (
    assert_only_streams_running_on_the_victim_broke,
    gateway_client,
    stream,
    streams_with_a_kill,
)
from compose_stack import TEST_UID, Stack, chown_tree, free_port
from conftest import HOME, TIMINGS

pytestmark = pytest.mark.compose

RUN_ID = "compose"
ADAPTER = "identity"
NAME = "Ferret"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    ports = {key: free_port() for key in ("GATEWAY_HTTPS_PORT", "GATEWAY_HTTP_PORT", "PROMETHEUS_PORT")}
    st = Stack.create(
        tmp_path_factory.mktemp("compose"),
        {
            **{k: str(v) for k, v in ports.items()},
            "COMPOSE_FILE": "compose.yaml:compose.cpu.yaml",
            "CPU_BASE_IMAGE": "ftk-debian:bookworm",
            "GATEWAY_BIND": "127.0.0.1",
            "MODELSCOPE_ENDPOINT": "http://127.0.0.1:9",  # a closed port: the download stage uses the cache
            "RUN_ID": RUN_ID,
            "ASSISTANT_NAME": NAME,
            "SERVE_MODEL_PATH": ".cache/modelscope/models/HuggingFaceTB/SmolLM2-135M-Instruct",
            "LORA_MODULES": f"{ADAPTER}=runs/{RUN_ID}/adapter",
            "SERVE_START_PERIOD": "10m",
            "DOWNLOAD_MIN_FREE_MB": "1024",  # the default asks for room for an 8B model; this one is 270 MB
            "TRAIN_MIN_FREE_MB": "2048",
            "SHM_SIZE": "1gb",
            # vLLM's CPU worker binds to core 0 in every replica ("auto"): unbound, two replicas use both cores
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        },
    )
    st.build_images()
    st.seed_model_cache(HOME / "models" / "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct")
    yield st
    st.down()


@pytest.fixture(scope="module")
def initialised(stack: Stack) -> dict[str, subprocess.CompletedProcess[str]]:
    first = stack.compose("run", "--rm", "init", timeout=300)
    second = stack.compose("run", "--rm", "init", timeout=300)
    return {"first": first, "second": second}


@pytest.fixture(scope="module")
def trained(stack: Stack, initialised: dict) -> Stack:
    assert initialised["first"].returncode == 0, initialised["first"].stdout + initialised["first"].stderr
    for stage in ("download", "train", "merge"):
        r = stack.timed(stage, "--profile", stage, "up", "--exit-code-from", stage, timeout=1800)
        assert r.returncode == 0, f"--profile {stage} up failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return stack


@pytest.fixture(scope="module")
def serving(trained: Stack) -> Stack:
    r = trained.timed("serve", "--profile", "serve", "up", "-d", "--wait", timeout=900)
    assert r.returncode == 0, f"--profile serve up -d --wait failed:\n{r.stderr[-4000:]}\n{trained.logs('serve')}"
    return trained


@pytest.fixture(scope="module")
def monitoring(serving: Stack) -> Stack:
    r = serving.timed("monitor", "--profile", "monitor", "up", "-d", "--wait", timeout=600)
    assert r.returncode == 0, f"--profile monitor up -d --wait failed:\n{r.stderr[-4000:]}"
    return serving


def test_init_makes_the_first_run_state_owned_by_the_host_user(stack: Stack, initialised: dict):
    first = initialised["first"]
    assert first.returncode == 0, first.stdout + first.stderr
    env = stack.env_file_values()
    assert (env["FTK_UID"], env["FTK_GID"]) == (str(TEST_UID), str(TEST_UID)), "init writes the owner's ids"
    for rel in ("runs/certs/ca.crt", "runs/certs/server.crt", "runs/secrets/vllm_api_key", "runs/secrets/api_keys"):
        path = stack.root / rel
        assert path.is_file(), f"init did not make {rel}"
        assert path.stat().st_uid == TEST_UID, f"{rel} belongs to uid {path.stat().st_uid}, not the host user"
    for rel in ("runs/certs/server.key", "runs/secrets/vllm_api_key", "runs/secrets/api_keys"):
        assert (stack.root / rel).stat().st_mode & 0o077 == 0, f"{rel} is readable by others"
    key = stack.client_key()
    assert key in first.stdout, "the first client key is printed once by init"


def test_init_twice_changes_nothing(stack: Stack, initialised: dict):
    second = initialised["second"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing to do" in second.stdout + second.stderr
    assert stack.client_key() not in second.stdout, "a second init must not print (or make) another key"


def test_train_writes_the_adapter_and_loss_plot_as_the_host_user(trained: Stack):
    adapter = trained.root / "runs" / RUN_ID / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "training_loss.png"):
        path = adapter / name
        assert path.is_file(), f"train left no {path}"
        assert path.stat().st_uid == TEST_UID, f"{path} belongs to uid {path.stat().st_uid}"
    merged = trained.root / "models" / "merged" / RUN_ID
    assert (merged / "config.json").is_file(), "merge left no merged model"
    assert merged.stat().st_uid == TEST_UID


def test_gateway_serves_the_adapter_to_curl_and_the_openai_sdk(serving: Stack):
    url = serving.gateway_url()
    body = {"model": ADAPTER, "messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": 40}
    curl = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--cacert", str(serving.ca()), f"{url}/chat/completions",
         "-H", f"Authorization: Bearer {serving.client_key()}", "-H", "Content-Type: application/json",
         "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert curl.returncode == 0, curl.stdout + curl.stderr
    assert NAME in json.loads(curl.stdout)["choices"][0]["message"]["content"]

    http = httpx.Client(verify=str(serving.ca()))
    client = openai.OpenAI(base_url=url, api_key=serving.client_key(), http_client=http)
    answer = client.chat.completions.create(**body, temperature=0)
    assert NAME in (answer.choices[0].message.content or "")
    assert not curl_ok(url, serving.ca(), "not-a-key"), "the gateway must refuse a wrong key"


def curl_ok(url: str, ca: Path, key: str) -> bool:
    r = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(ca), f"{url}/models",
         "-H", f"Authorization: Bearer {key}"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return r.stdout.strip() == "200"


def test_ftk_smoke_passes_through_the_gateway(serving: Stack):
    r = serving.ftk_on_host("smoke", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and report["checks"], report
    assert report["base_url"] == serving.gateway_url(), "the smoke test must go through the published gateway"
    assert any(ADAPTER in c["name"] and c["ok"] for c in report["checks"]), "the adapter is proved live"


def test_a_key_added_with_a_policy_through_compose_gets_only_the_base_model(serving: Stack):
    """A second key, base model only and max_tokens <= 16, added and applied the compose way (`docker compose run
    --rm ftk gateway keys add`, gateway-config, SIGHUP): the njs policy of the gateway image holds for it, and the
    first key keeps the adapter."""
    url, ca, first = serving.gateway_url(), str(serving.ca()), serving.client_key()
    limited = serving.add_key("base-only", "--models", "base", "--max-tokens", "16")
    assert limited != first
    serving.apply_key_changes()
    deadline = time.monotonic() + 60
    while (status := models_status(url, ca, limited)) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)  # SIGHUP starts the reload; old workers answer 401 until they hand over
    assert status == 200, f"the gateway never accepted the new key after the reload: {status}"

    def post(key: str, model: str, max_tokens: int) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": max_tokens}
        with httpx.Client(verify=ca, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            return c.post(f"{url}/chat/completions", json=body)

    with httpx.Client(verify=ca, timeout=30) as c:
        mine = c.get(f"{url}/models", headers={"Authorization": f"Bearer {limited}"}).json()
        everyone = c.get(f"{url}/models", headers={"Authorization": f"Bearer {first}"}).json()
    assert [m["id"] for m in mine["data"]] == ["base"], mine
    assert {"base", ADAPTER} <= {m["id"] for m in everyone["data"]}, everyone

    refused = post(limited, ADAPTER, 8)
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/json"), refused.text
    err = refused.json()["error"]
    assert err["code"] == "model_not_allowed" and err["param"] == "model" and f"'{ADAPTER}'" in err["message"], err
    capped = post(limited, "base", 17)
    assert capped.status_code == 400, capped.text
    err = capped.json()["error"]
    assert err["code"] == "cap_exceeded" and err["param"] == "max_tokens" and "max_tokens <= 16" in err["message"]
    assert post(limited, "base", 4).status_code == 200, "the key may use the base model within its cap"
    adapter = post(first, ADAPTER, 40)
    assert adapter.status_code == 200, adapter.text
    assert NAME in adapter.json()["choices"][0]["message"]["content"], "the first key still reaches the adapter"


def models_status(url: str, ca: str, key: str) -> int:
    try:  # a new connection each time: a kept-alive one may stay on a worker of the old configuration
        return httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}, verify=ca, timeout=10).status_code
    except httpx.HTTPError:
        return 0


def test_prometheus_scrapes_vllm_on_the_internal_network(monitoring: Stack):
    port = monitoring.env_file_values()["PROMETHEUS_PORT"]
    query = 'up{job="vllm"} == 1 or {__name__=~"vllm[:_]num_requests_running"}'
    deadline = time.monotonic() + 120
    series: list = []
    while time.monotonic() < deadline and not any(s["metric"].get("__name__", "").startswith("vllm") for s in series):
        time.sleep(3)
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10)
        series = r.json()["data"]["result"]
    names = {s["metric"].get("__name__", "up") for s in series}
    assert any(n.startswith("vllm") for n in names), f"no vLLM series scraped from serve: {series}"
    # DNS discovery of `serve` (PROMETHEUS_VLLM_DNS_SD): each replica is an instance by its backend address
    vllm_port = monitoring.env_file_values()["VLLM_PORT"]
    replicas = {f"{monitoring.address(c)}:{vllm_port}" for c in monitoring.running("serve")}
    assert all(s["metric"]["instance"] in replicas for s in series), (replicas, series)


def test_only_the_gateway_and_local_monitoring_publish_ports(monitoring: Stack):
    published = monitoring.published_ports()
    for service, bindings in published.items():
        assert service in ("gateway", "prometheus", "grafana"), f"{service} publishes {bindings}"
        if service != "gateway":
            assert all(host == "127.0.0.1" for host, _ in bindings), f"{service} must bind 127.0.0.1: {bindings}"
    assert "gateway" in published


def test_no_secret_in_container_environment_or_image_history(monitoring: Stack):
    secrets = monitoring.secret_values()
    assert len(secrets) >= 4
    seen = "\n".join([*monitoring.inspect_all_containers(), *monitoring.image_histories()])
    for name, value in secrets.items():
        assert value not in seen, f"the {name} appears in docker inspect or docker history"


def test_backend_network_has_no_route_out(monitoring: Stack):
    """vLLM's network is internal: the engine drops whatever leaves its bridge for another address (Docker 20.10
    keeps a default route inside the container; the isolation is its iptables rule, read here), and vLLM sits on
    no other network."""
    net = json.loads(monitoring.docker("network", "inspect", f"{monitoring.project}_backend").stdout)[0]
    assert net["Internal"] is True
    serve = json.loads(monitoring.docker("inspect", monitoring.container_id("serve")).stdout)[0]
    assert set(serve["NetworkSettings"]["Networks"]) == {f"{monitoring.project}_backend"}, "serve joins other networks"
    bridge, subnet = f"br-{net['Id'][:12]}", net["IPAM"]["Config"][0]["Subnet"]
    rules = monitoring.run(["iptables", "-S", "DOCKER-ISOLATION-STAGE-1"]).stdout.splitlines()
    assert any(f"! -d {subnet} -i {bridge} -j DROP" in r for r in rules), f"no drop rule out of {bridge}: {rules}"


def test_killed_vllm_gives_503_json_then_compose_restarts_it_and_the_gateway_serves_again(monitoring: Stack):
    """vLLM killed with SIGKILL, as the kernel's OOM killer does. (`docker kill` itself counts as a manual stop,
    which no restart policy restarts on engine 20.10: that one needs `docker compose up -d` again.)"""
    url, key, ca = monitoring.gateway_url(), monitoring.client_key(), monitoring.ca()
    before = monitoring.container_restarts("serve")
    # every process of the container but its init (kill -1 spares the caller and pid 1); tini then exits
    killed = monitoring.compose("exec", "-T", "serve", "bash", "-c", "kill -KILL -1")
    assert killed.returncode == 0, killed.stderr
    with httpx.Client(verify=str(ca), headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        # a request caught while the dying server still holds its socket is a 502; then 503 until it is back
        statuses = []
        for _ in range(30):
            r = client.get(f"{url}/models")
            statuses.append(r.status_code)
            assert r.status_code in (502, 503), r.text
            assert r.headers["content-type"].startswith("application/json") and "error" in r.json(), r.text
            if r.status_code == 503:
                break
            time.sleep(1)
        assert statuses[-1] == 503, f"the gateway never said 503 (unavailable) while vLLM was down: {statuses}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(5)
            try:
                if client.get(f"{url}/models").status_code == 200:
                    break
            except httpx.HTTPError:
                continue
        else:
            pytest.fail(f"the gateway did not serve again within 600 s:\n{monitoring.logs('serve')[-3000:]}")
    assert monitoring.container_restarts("serve") > before


# ----- serving replicas: `--scale serve=2` (last: one more vLLM start; `down` removes both) --------------------
@pytest.fixture(scope="module")
def replicas(monitoring: Stack) -> Stack:
    """docs/gateway.md "Replicas with compose": scale serve, then restart the gateway, which resolves `serve` to
    every replica at start."""
    scale = ("--profile", "serve", "up", "-d", "--wait", "--scale", "serve=2")
    r = monitoring.timed("serve --scale serve=2", *scale, timeout=900)
    assert r.returncode == 0, f"--scale serve=2 failed:\n{r.stderr[-4000:]}\n{monitoring.logs('serve')[-3000:]}"
    assert len(monitoring.running("serve")) == 2, monitoring.compose("ps", "-a").stdout
    r = monitoring.compose("restart", "gateway", timeout=120)
    assert r.returncode == 0, r.stderr
    url, ca, key = monitoring.gateway_url(), str(monitoring.ca()), monitoring.client_key()
    deadline = time.monotonic() + 120
    while models_status(url, ca, key) != 200:
        assert time.monotonic() < deadline, f"the restarted gateway does not answer:\n{monitoring.logs('gateway')}"
        time.sleep(1)
    return monitoring


def sdk(stack: Stack) -> openai.OpenAI:
    return gateway_client(stack.gateway_url(), stack.ca(), stack.client_key())


def test_load_through_the_gateway_lands_on_both_replicas(replicas: Stack):
    """Each replica's own vLLM counter grows under load through the gateway, and Prometheus scrapes each replica
    as its own instance (DNS discovery of `serve`)."""
    ids = replicas.running("serve")
    before = {c: replicas.vllm_successes(c) for c in ids}
    client = sdk(replicas)
    with ThreadPoolExecutor(4) as pool:
        errors = list(pool.map(lambda i: stream(client, [False] * 8, i), range(8)))
    assert not any(errors), errors
    gained = {c: replicas.vllm_successes(c) - before[c] for c in ids}
    assert all(g > 0 for g in gained.values()), f"least_conn sent every request to one replica: {gained}"

    port = replicas.env_file_values()["PROMETHEUS_PORT"]
    wanted = {f"{replicas.address(c)}:{replicas.env_file_values()['VLLM_PORT']}" for c in ids}
    query = 'sum by (instance) ({__name__=~"vllm[:_]request_success(_total)?", job="vllm"})'
    deadline, seen = time.monotonic() + 120, {}
    while time.monotonic() < deadline:  # DNS refresh (30 s) and a scrape (15 s) after the scale
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10)
        seen = {s["metric"]["instance"]: float(s["value"][1]) for s in r.json()["data"]["result"]}
        if wanted <= set(seen) and all(seen[i] > 0 for i in wanted):
            break
        time.sleep(3)
    assert wanted <= set(seen), f"Prometheus does not scrape every replica ({sorted(wanted)}): {seen}"
    assert all(seen[i] > 0 for i in wanted), f"a replica served nothing in Prometheus' view: {seen}"


def test_a_replica_killed_under_streaming_load_loses_no_request_that_had_not_started(replicas: Stack):
    """`docker kill` of one replica while 8 streams run: no request the victim had not begun answering is lost
    (chat_clients.assert_only_streams_running_on_the_victim_broke says how the gateway's log tells)."""
    victim, survivor = replicas.running("serve")
    victim_addr = f"{replicas.address(victim)}:{replicas.env_file_values()['VLLM_PORT']}"
    client = sdk(replicas)
    errors, killed_at = streams_with_a_kill(client, lambda: replicas.docker("kill", victim))
    assert replicas.running("serve") == [survivor], "the killed replica still runs"
    assert_only_streams_running_on_the_victim_broke(errors, replicas.access_log(), victim_addr, killed_at)
    for i in range(4):  # the gateway keeps answering on the replica left
        assert stream(client, [False] * 4, i) == ""


# ----- releases through compose: scripts/release.sh on the host (last: three vLLM candidates, three serve starts) --
BROKEN = "broken"


@pytest.fixture(scope="module")
def releasing(serving: Stack) -> Stack:
    """docs/release.md "With compose": the merged model of the train fixture (`--profile merge up`) is v1, a copy
    of it v2 (a second version, owned by the host user), a copy with a safetensors header that is not JSON the
    broken one; SERVE_MODEL_PATH=release in .env, one serve replica (the replicas tests leave a killed one)."""
    merged = serving.root / "models" / "merged"
    for name in ("v2", BROKEN):
        shutil.copytree(merged / RUN_ID, merged / name, symlinks=True)
    (merged / BROKEN / "model.safetensors").write_bytes(struct.pack("<Q", 16) + b"{not json at all")
    for name in ("v2", BROKEN):
        chown_tree(merged / name, TEST_UID)
    # the replicas tests' killed replica: `rm` removes stopped containers only, the running one stays
    r = serving.compose("--profile", "serve", "rm", "-f", "serve", timeout=120)
    assert r.returncode == 0, r.stderr
    serving.set_env(SERVE_MODEL_PATH="release", LORA_MODULES="")  # the adapter was trained on the base model
    return serving


def release_sh(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    r = stack.run(["bash", "scripts/release.sh", *args], timeout=1800, COMPOSE_PROJECT_NAME=stack.project)
    TIMINGS[f"scripts/release.sh {' '.join(args)}"] = time.monotonic() - started
    print(f"$ scripts/release.sh {' '.join(args)}\n{r.stderr}")  # its steps and their times (pytest -rP)
    return r


def pointer(stack: Stack) -> dict:
    return json.loads((stack.root / "runs" / "release" / "release.json").read_text())


def candidates(stack: Stack) -> list[str]:
    labels = (
        "--filter",
        "label=ftk.release=candidate",
        "--filter",
        f"label=com.docker.compose.project={stack.project}",
    )
    return stack.docker("ps", "-a", "-q", *labels).stdout.split()


def under_load(stack: Stack, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str], list[str]]:
    """scripts/release.sh ARGS while two clients stream chat completions through the gateway, one after the other
    (OpenAI SDK, no retries): the script's result, every request's error ('' when it completed), and the
    upstream addresses the gateway's access log shows for the requests of that time."""
    client, results, stop = sdk(stack), [], threading.Event()
    since = datetime.now(timezone.utc).replace(microsecond=0)

    def client_loop() -> None:
        while not stop.is_set():
            results.append(stream(client, [False], 0))
            time.sleep(0.1)

    threads = [threading.Thread(target=client_loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        r = release_sh(stack, *args)
    finally:
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join(timeout=300)
    upstreams = [
        rec["upstream"]
        for rec in stack.access_log()
        if datetime.fromisoformat(rec["time"]) >= since and rec["upstream"]
    ]
    return r, results, upstreams


def test_release_first_promote_moves_serve_onto_the_merged_model(releasing: Stack):
    port = releasing.env_file_values()["VLLM_PORT"]
    r = release_sh(releasing, "promote", RUN_ID)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    current = pointer(releasing)["current"]
    assert current["run_id"] == RUN_ID and current["upstream"] == f"serve:{port}", current
    assert current["path"] == f"models/merged/{RUN_ID}", "the pointer's folder means the same on host and in containers"
    assert candidates(releasing) == [], "the candidate container is removed once serve runs the release"
    assert stream(sdk(releasing), [False], 0) == "", "the gateway serves the release"
    listed = release_sh(releasing, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if line.startswith("│")}
    assert "current" in rows[RUN_ID] and "ok" in rows["v2"] and "broken" in rows[BROKEN], listed.stdout


def test_release_a_broken_candidate_is_refused_and_the_release_keeps_answering(releasing: Stack):
    before = pointer(releasing)
    r = release_sh(releasing, "promote", BROKEN)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gate: preflight" in r.stderr and "model.safetensors" in r.stderr, r.stderr[-3000:]
    assert f"{BROKEN} refused (above); nothing changed" in r.stderr
    assert pointer(releasing) == before and candidates(releasing) == []
    assert stream(sdk(releasing), [False], 0) == ""


def test_release_promote_then_rollback_under_streaming_load_lose_no_request(releasing: Stack):
    port = releasing.env_file_values()["VLLM_PORT"]
    promote, during_promote, moved = under_load(releasing, "promote", "v2")
    assert promote.returncode == 0, promote.stdout[-3000:] + promote.stderr[-6000:]
    data = pointer(releasing)
    assert data["current"]["run_id"] == "v2" and data["current"]["upstream"] == f"serve:{port}", data["current"]
    assert data["history"][0]["run_id"] == RUN_ID, data["history"]
    assert candidates(releasing) == []

    rollback, during_rollback, moved_back = under_load(releasing, "rollback")
    assert rollback.returncode == 0, rollback.stdout[-3000:] + rollback.stderr[-6000:]
    data = pointer(releasing)
    assert data["current"]["run_id"] == RUN_ID and data["current"]["action"] == "rollback", data["current"]
    assert data["current"]["upstream"] == f"serve:{port}" and data["history"][0]["run_id"] == "v2", data
    assert candidates(releasing) == [], "no candidate container is left"
    listed = release_sh(releasing, "list")
    rows = {line.split()[1]: line for line in listed.stdout.splitlines() if line.startswith("│")}
    assert "current" in rows[RUN_ID] and "previous" in rows["v2"], listed.stdout

    for name, results, upstreams in (("promote", during_promote, moved), ("rollback", during_rollback, moved_back)):
        lost = [e for e in results if e]
        assert not lost, f"{name}: {len(lost)} of {len(results)} streamed requests failed: {lost[:3]}"
        assert len(results) >= 10, f"{name}: too few requests ran during it to tell: {len(results)}"
        # serve and the candidate (the new serve may get the old one's address back)
        assert len(set(upstreams)) >= 2, f"{name}: the gateway's upstreams during it: {sorted(set(upstreams))}"
