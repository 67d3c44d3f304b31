"""scripts/gateway.sh rendering (nginx -t on the result) and `ftk gateway keys`, without any upstream running."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import HOME, VENVS, clean_env, run_ftk
from ftk.console import UserError
from ftk.gateway import keys as gk
from ftk.gateway.keys import add_key_via_cli

GATEWAY = HOME / "scripts" / "gateway.sh"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is missing: run `make setup` (scripts/setup.sh debian)")
    keys = tmp_path / "api_keys"
    keys.write_text("# comment\nsk-ftk-aaaaaaaaaaaaaaaaaaaa alice active\nsk-ftk-bbbbbbbbbbbbbbbbbbbb bob revoked\n")
    keys.chmod(0o600)
    (tmp_path / "vllm_key").write_text("vllm-secret-123\n")
    return clean_env(
        GATEWAY_PREFIX=str(tmp_path / "gw"),
        API_KEYS_FILE=str(keys),
        VLLM_API_KEY_FILE=str(tmp_path / "vllm_key"),
        TLS_CERT=str(tmp_path / "certs" / "server.crt"),
        TLS_KEY=str(tmp_path / "certs" / "server.key"),
        TLS_CA=str(tmp_path / "certs" / "ca.crt"),
        VLLM_UPSTREAMS="127.0.0.1:8000, 127.0.0.1:8001",
        CERT_HOSTNAMES="localhost,gw.example.com",
        CERT_IPS="127.0.0.1",
    )


def render(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GATEWAY), "--render-only", *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_render_makes_certs_key_maps_and_a_config_nginx_accepts(env: dict[str, str], tmp_path: Path) -> None:
    res = render(env)
    assert res.returncode == 0, res.stderr
    assert "nginx -t: configuration ok" in res.stderr
    conf = (tmp_path / "gw" / "conf" / "nginx.conf").read_text()
    assert "server 127.0.0.1:8000 max_fails=3" in conf and "server 127.0.0.1:8001 max_fails=3" in conf
    assert "least_conn;" in conf and "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "$api_key_id" in conf and "${" not in conf, "nginx variables kept, template variables all replaced"
    proxy = (tmp_path / "gw" / "conf" / "snippets" / "proxy_upstream.conf").read_text()
    assert "proxy_buffering off;" in proxy and "proxy_ignore_client_abort off;" in proxy
    keys_conf = tmp_path / "gw" / "conf" / "api_keys.conf"
    assert keys_conf.stat().st_mode & 0o777 == 0o600
    text = keys_conf.read_text()
    alice_id = hashlib.sha256(b"sk-ftk-aaaaaaaaaaaaaaaaaaaa").hexdigest()[:12]
    assert f'"Bearer sk-ftk-aaaaaaaaaaaaaaaaaaaa" {alice_id};' in text
    assert '"Bearer sk-ftk-bbbbbbbbbbbbbbbbbbbb" revoked;' in text
    auth = tmp_path / "gw" / "conf" / "upstream_auth.conf"
    assert auth.read_text() == 'proxy_set_header Authorization "Bearer vllm-secret-123";\n'
    assert auth.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "certs" / "server.key").stat().st_mode & 0o777 == 0o600
    san = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(tmp_path / "certs" / "server.crt"),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "gw.example.com" in san and "127.0.0.1" in san
    assert (
        subprocess.run(
            [
                "openssl",
                "verify",
                "-CAfile",
                str(tmp_path / "certs" / "ca.crt"),
                str(tmp_path / "certs" / "server.crt"),
            ],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def test_buffering_variant_for_the_benchmark(env: dict[str, str], tmp_path: Path) -> None:
    res = render({**env, "GATEWAY_PROXY_BUFFERING": "on"})
    assert res.returncode == 0, res.stderr
    assert "proxy_buffering on;" in (tmp_path / "gw" / "conf" / "snippets" / "proxy_upstream.conf").read_text()


def test_idle_upstream_connections_close_before_vllm_closes_them(env: dict[str, str], tmp_path: Path) -> None:
    """nginx reusing a connection vLLM is just closing fails a POST with a 502 that nginx does not retry."""
    envs = next((VENVS / "serve").glob("lib/python3*/site-packages/vllm/envs.py"))
    vllm_idle = int(re.search(r'"VLLM_HTTP_TIMEOUT_KEEP_ALIVE", "(\d+)"', envs.read_text()).group(1))
    assert render(env).returncode == 0
    conf = (tmp_path / "gw" / "conf" / "nginx.conf").read_text()
    upstream = conf[conf.index("upstream vllm {") :].split("}")[0]
    nginx_idle = int(re.search(r"keepalive_timeout (\d+)s;", upstream).group(1))
    assert nginx_idle < vllm_idle, (nginx_idle, vllm_idle)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("short alice\n", ":1: the key is not 16-256 characters"),
        ("# only a comment\n", "has no active key"),
        (
            "sk-ftk-aaaaaaaaaaaaaaaaaaaa a\nsk-ftk-aaaaaaaaaaaaaaaaaaaa b\n",
            ":2: the same key appears twice",
        ),
        (
            "sk-ftk-aaaaaaaaaaaaaaaaaaaa a paused\n",
            ":1: status 'paused' is neither active nor revoked",
        ),
        ('sk-ftk-"quoted";injection a\n', ":1: the key is not"),
    ],
)
def test_bad_keys_file_is_refused_with_file_and_line(env: dict[str, str], content: str, message: str) -> None:
    Path(env["API_KEYS_FILE"]).write_text(content)
    res = render(env)
    assert res.returncode == 1
    assert env["API_KEYS_FILE"] in res.stderr and message in res.stderr, res.stderr


def test_missing_keys_file_names_the_fix(env: dict[str, str]) -> None:
    os.unlink(env["API_KEYS_FILE"])
    res = render(env)
    assert res.returncode == 1 and "ftk gateway keys add NAME" in res.stderr


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("GATEWAY_HTTPS_PORT", "70000", "GATEWAY_HTTPS_PORT='70000' is not a port"),
        (
            "VLLM_UPSTREAMS",
            "http://a:8000",
            "VLLM_UPSTREAMS: 'http://a:8000' is not host:port",
        ),
        ("CLIENT_MAX_BODY_SIZE", "20 MB", "CLIENT_MAX_BODY_SIZE='20 MB' is not a size"),
        ("RATE_LIMIT_RPS", "0", "RATE_LIMIT_RPS='0' must be a whole number >= 1"),
    ],
)
def test_bad_settings_name_the_key(env: dict[str, str], key: str, value: str, message: str) -> None:
    res = render({**env, key: value})
    assert res.returncode == 1 and message in res.stderr, res.stderr


def test_keys_cli_add_list_revoke(tmp_path: Path) -> None:
    keys = tmp_path / "k" / "api_keys"
    added = run_ftk("gateway", "keys", "add", "team-a", "--file", str(keys))
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-ftk-") and len(key) > 40
    assert keys.stat().st_mode & 0o777 == 0o600
    kid = hashlib.sha256(key.encode()).hexdigest()[:12]
    listed = run_ftk("gateway", "keys", "list", "--file", str(keys))
    assert "team-a" in listed.stdout and kid in listed.stdout and key not in listed.stdout
    dup = run_ftk("gateway", "keys", "add", "team-a", "--file", str(keys))
    assert dup.returncode == 1 and "an active key named 'team-a' exists" in dup.stderr
    revoked = run_ftk("gateway", "keys", "revoke", kid, "--file", str(keys))
    assert revoked.returncode == 0 and "revoked 'team-a'" in revoked.stdout
    assert f"{key}\tteam-a\trevoked\t" in keys.read_text()
    assert (keys.parent / "api_keys.bak").stat().st_mode & 0o777 == 0o600
    again = run_ftk("gateway", "keys", "revoke", "team-a", "--file", str(keys))
    assert again.returncode == 1 and "no active key" in again.stderr


def test_add_key_via_cli_returns_the_key_the_file_holds_with_its_policy(tmp_path: Path) -> None:
    """The harnesses' way to add a key (tests' gateways, tools/bench): the real `ftk gateway keys add`."""
    keys = tmp_path / "api_keys"
    key = add_key_via_cli(keys, "bench-policy", "--models", "base,bench-*", "--max-tokens", "64", env=clean_env())
    (record,) = gk.read_keys(keys)
    assert (record.key, record.name) == (key, "bench-policy")
    assert record.policy.tokens() == ["models=base,bench-*", "max_tokens=64"]
    with pytest.raises(UserError, match="an active key named 'bench-policy' exists"):
        add_key_via_cli(keys, "bench-policy", env=clean_env())


def test_keys_file_shared_with_the_smoke_client(tmp_path: Path) -> None:
    from ftk.gateway.keys import first_active_key

    keys = tmp_path / "api_keys"
    keys.write_text("sk-ftk-old-000000000000000 old revoked\nsk-ftk-new-000000000000000 new\n")
    assert first_active_key(keys) == "sk-ftk-new-000000000000000"


def test_log_metrics_counts_statuses_and_follows_rotation(tmp_path: Path) -> None:
    from ftk.gateway.log_metrics import GatewayLogMetrics

    log = tmp_path / "access.log"
    line = '{{"server_port":"{port}","status":{status},"key_id":"{key}","request_time":{t},"bytes_sent":100}}\n'
    log.write_text(
        line.format(port=8443, status=200, key="abc", t=0.2)
        + line.format(port=8443, status=429, key="abc", t=0.0)
        + "not json\n"
        + line.format(port=9443, status=200, key="", t=0.01)
        + '{"server_port":"8443","status":503'  # half-written: waits for the rest
    )
    m = GatewayLogMetrics(log, {"public": "8443", "internal": "9443"})
    m.poll()
    text = m.render()
    assert 'ftk_gateway_requests_total{listener="public",status="200",key_id="abc"} 1' in text
    assert 'ftk_gateway_requests_total{listener="public",status="429",key_id="abc"} 1' in text
    assert 'ftk_gateway_requests_total{listener="internal",status="200",key_id=""} 1' in text
    assert 'ftk_gateway_request_duration_seconds_bucket{listener="public",le="0.25"} 2' in text
    assert "ftk_gateway_log_lines_invalid_total 1" in text and 'status="503"' not in text
    with log.open("a") as f:
        f.write(',"key_id":"abc","request_time":0.1}\n')
    m.poll()
    assert 'ftk_gateway_requests_total{listener="public",status="503",key_id="abc"} 1' in m.render()
    log.rename(tmp_path / "access.log.1")  # rotation: a new file starts from its beginning
    log.write_text(line.format(port=8443, status=200, key="abc", t=0.2))
    m.poll()
    assert 'ftk_gateway_requests_total{listener="public",status="200",key_id="abc"} 2' in m.render()
