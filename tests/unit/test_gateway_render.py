"""The Python renderer of the gateway's nginx configuration (ftk.gateway.nginx_conf, ftk.stages.gateway): every value
from the validated settings, bad values refused naming the key and the fix, the result accepted by `nginx -t`, the
secret files 0600 and written at once. tests/unit/test_gateway_config.py runs the same through scripts/gateway.sh."""

from __future__ import annotations

import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import HOME, clean_env, run_ftk
from ftk import conf_template
from ftk.console import UserError
from ftk.doctor import registry
from ftk.gateway import nginx_conf
from ftk.gateway.keys import read_keys
from ftk.settings import Settings, SettingsError, load_settings
from ftk.stages import gateway as stage
from pydantic import create_model

ALICE, BOB = "sk-ftk-aaaaaaaaaaaaaaaaaaaa", "sk-ftk-bbbbbbbbbbbbbbbbbbbb"
TEMPLATES = HOME / "docker" / "nginx" / "templates"


def nginx() -> str:
    found = stage.nginx_binary()
    if found is None:
        pytest.fail("nginx is missing: run `make setup` (scripts/setup.sh debian)")
    return found


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """The gateway's input files: a key file (one active, one revoked key), vLLM's key, a self-signed certificate."""
    (tmp_path / "api_keys").write_text(f"# comment\n{ALICE} alice active\n{BOB} bob revoked\n")
    (tmp_path / "api_keys").chmod(0o600)
    (tmp_path / "vllm_key").write_text("vllm-secret-123\n")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    req = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    subprocess.run(["openssl", *req, "-keyout", str(key), "-out", str(cert)], capture_output=True, check=True)
    return {
        "gateway_prefix": str(tmp_path / "gw"),
        "api_keys_file": str(tmp_path / "api_keys"),
        "vllm_api_key_file": str(tmp_path / "vllm_key"),
        "tls_cert": str(cert),
        "tls_key": str(key),
    }


def settings(files: dict[str, str], model: type[Settings] = Settings, **values: object) -> Settings:
    return model(_env_file=None, **{**files, **values})  # type: ignore[call-arg]


def render(s: Settings) -> Path:
    prefix = s.path("gateway_prefix")
    stage.write_config(s, prefix, "")
    return prefix / "conf"


# ----- bad settings: the key, the value and the fix --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("GATEWAY_INTERNAL_PORT", "0", "GATEWAY_INTERNAL_PORT='0' is not a port (1-65535); fix it in .env"),
        ("RATE_LIMIT_BURST", "-1", "RATE_LIMIT_BURST='-1' must be a whole number >= 0; fix it in .env"),
        ("MAX_CONNS_PER_KEY", "many", "MAX_CONNS_PER_KEY='many' must be a whole number >= 1; fix it in .env"),
        ("PROXY_READ_TIMEOUT", "1.5", "PROXY_READ_TIMEOUT='1.5' must be a whole number >= 1; fix it in .env"),
        ("CLIENT_MAX_BODY_SIZE", "20mb", "CLIENT_MAX_BODY_SIZE='20mb' is not a size like 20m"),
        ("GATEWAY_SERVER_NAME", "llm example", "GATEWAY_SERVER_NAME='llm example' is not a host name"),
        ("GATEWAY_BIND", "127.0.0.1;", "GATEWAY_BIND='127.0.0.1;' is not a host name or IP address"),
        ("VLLM_UPSTREAMS", "a:1,b", "VLLM_UPSTREAMS: 'b' is not host:port; write e.g. VLLM_UPSTREAMS="),
        ("TLS_CERT", "/certs/my cert.pem", "TLS_CERT='/certs/my cert.pem' has a space, quote or one of"),
        ("GATEWAY_PREFIX", "runs/gw;x", "GATEWAY_PREFIX='runs/gw;x' has a space, quote or one of"),
        ("GATEWAY_PROXY_BUFFERING", "yes", "GATEWAY_PROXY_BUFFERING='yes': Input should be 'on' or 'off'"),
    ],
)
def test_a_bad_setting_names_the_key_the_value_and_the_fix(tmp_path: Path, key: str, value: str, message: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"{key}={value}\n")
    with pytest.raises(SettingsError) as err:
        load_settings(env_file)
    assert f"{env_file}: {message}" in str(err.value)
    checked = run_ftk("env", "check", str(env_file))  # the same sentence with the line
    assert checked.returncode == 1 and f"{env_file}:1: {message}" in checked.stderr, checked.stderr


def test_the_stage_stops_on_a_bad_setting_before_writing_anything(tmp_path: Path) -> None:
    r = run_ftk(
        "run", "gateway", "--render-only",
        env=clean_env(GATEWAY_PREFIX=str(tmp_path / "gw"), RATE_LIMIT_RPS="0"),
    )  # fmt: skip
    assert r.returncode == 1 and "RATE_LIMIT_RPS='0' must be a whole number >= 1; fix it in .env" in r.stderr
    assert not (tmp_path / "gw").exists()


def test_render_only_and_prepare_exclude_each_other() -> None:
    r = run_ftk("run", "gateway", "--render-only", "--prepare")
    assert r.returncode == 2 and "--render-only and --prepare exclude each other" in r.stderr


def test_a_project_home_nginx_cannot_read_unquoted_is_refused(files: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("FTK_HOME", "/srv/my project")
    s = settings({**files, "gateway_prefix": "runs/gateway"})
    with pytest.raises(UserError, match=r"GATEWAY_PREFIX resolves to '/srv/my project/runs/gateway'.*plain absolute"):
        nginx_conf.template_values(s, "")


# ----- what nginx gets ---------------------------------------------------------------------------------------


def test_the_rendered_configuration_passes_nginx_t(files: dict[str, str]) -> None:
    s = settings(files, vllm_upstreams="127.0.0.1:8000 [::1]:8001", gateway_bind="::1")
    conf = render(s)
    stage.nginx_test(nginx(), conf.parent)  # raises UserError with nginx's own message otherwise
    text = (conf / "nginx.conf").read_text()
    assert "server 127.0.0.1:8000 max_fails=3 fail_timeout=10s;" in text
    assert "server [::1]:8001 max_fails=3 fail_timeout=10s;" in text
    assert f"listen [::1]:{s.gateway_https_port} ssl" in text
    for path in [conf / "nginx.conf", *conf.glob("snippets/*.conf")]:
        assert "${" not in path.read_text(), f"{path}: a placeholder was left"


def test_nginx_t_failure_is_a_user_error_naming_the_file(files: dict[str, str], capsys) -> None:
    conf = render(settings(files))
    (conf / "snippets" / "headers.conf").write_text("add_header;\n")  # what a broken template would give
    with pytest.raises(UserError, match=r"nginx -t refused .*/conf/nginx.conf \(see above\)"):
        stage.nginx_test(nginx(), conf.parent)
    assert "add_header" in capsys.readouterr().err, "nginx's own message is shown"


CHANGED_DEFAULTS = [  # (field, type, a default other than settings.py's, what the configuration then holds)
    ("rate_limit_rps", int, 7, ("nginx.conf", "rate=7r/s;")),
    ("rate_limit_burst", int, 3, ("key_limits.conf", "limit_req zone=per_key burst=3 nodelay;")),
    ("max_conns_per_key", int, 5, ("key_limits.conf", "limit_conn per_key_conn 5;")),
    ("gateway_max_n", int, 3, ("api_keys.conf", '"n":3,')),
    ("gateway_max_images", int, 2, ("api_keys.conf", '"images":2}')),
    ("gateway_max_tokens", int, 99, ("api_keys.conf", '"max_tokens":99,')),
    ("gateway_njs_module", Path, Path("/opt/njs.so"), ("nginx.conf", "load_module /opt/njs.so;")),
    ("gateway_capture_rate", float, 0.5, ("nginx.conf", "js_var $ftk_capture_rate 0.5;")),
    ("client_max_body_size", str, "3m", ("nginx.conf", "client_max_body_size 3m;")),
    ("proxy_read_timeout", int, 42, ("snippets/proxy_upstream.conf", "proxy_read_timeout 42s;")),
    ("gateway_proxy_buffering", str, "on", ("snippets/proxy_upstream.conf", "proxy_buffering on;")),
    ("gateway_https_port", int, 10443, ("nginx.conf", "listen 127.0.0.1:10443 ssl")),
    ("gateway_http_port", int, 10080, ("nginx.conf", "listen 127.0.0.1:10080 default_server;")),
    ("gateway_internal_port", int, 10943, ("nginx.conf", "listen 127.0.0.1:10943;")),
    ("gateway_internal_bind", str, "10.0.0.1", ("nginx.conf", "listen 10.0.0.1:9443;")),
    ("gateway_server_name", str, "llm.example.com", ("nginx.conf", "server_name llm.example.com _;")),
    ("vllm_port", int, 18000, ("nginx.conf", "server 127.0.0.1:18000 max_fails=3")),
]


@pytest.mark.parametrize(("field", "kind", "default", "expect"), CHANGED_DEFAULTS, ids=[c[0] for c in CHANGED_DEFAULTS])
def test_a_default_changed_in_settings_reaches_the_configuration(
    files: dict[str, str], field: str, kind: type, default: object, expect: tuple[str, str]
) -> None:
    """No value is given for the field: what nginx gets is the model's default, so settings.py is its only home."""
    assert Settings.model_fields[field].default != default
    changed = create_model("Changed", __base__=Settings, **{field: (kind, default)})
    conf = render(settings(files, changed))
    name, snippet = expect
    assert snippet in (conf / name).read_text(), f"{field}={default!r} did not reach {name}"


def test_templates_hold_no_value_of_their_own() -> None:
    """Every `${NAME}` of the templates is a value the renderer fills; none is written `${NAME:-default}`."""
    names = {n for p in TEMPLATES.rglob("*.template") for n in conf_template.PLACEHOLDER_RE.findall(p.read_text())}
    assert names == set(nginx_conf.template_values(Settings(_env_file=None), "")), "renderer and templates differ"  # type: ignore[call-arg]
    assert not any(":-" in p.read_text() for p in TEMPLATES.rglob("*.template") if "${" in p.read_text())


def test_an_unknown_placeholder_names_the_template(tmp_path: Path) -> None:
    (tmp_path / "x.conf.template").write_text("limit ${RATE_LIMT_RPS};\n")
    with pytest.raises(UserError, match=r"x.conf.template: unknown placeholder \$\{RATE_LIMT_RPS\}"):
        conf_template.render_tree(tmp_path, {"RATE_LIMIT_RPS": "1"})


# ----- keys and secrets ----------------------------------------------------------------------------------------


def test_key_maps_and_upstream_auth_are_0600_and_written_at_once(files: dict[str, str]) -> None:
    conf = render(settings(files))
    for name in ("api_keys.conf", "upstream_auth.conf"):
        assert stat.S_IMODE((conf / name).stat().st_mode) == 0o600, name
    assert not list(conf.glob(".*")), "a temporary file was left next to the configuration"
    maps = (conf / "api_keys.conf").read_text()
    assert f'"Bearer {ALICE}" ok;' in maps and f'"Bearer {BOB}" revoked;' in maps and '"" missing;' in maps
    assert (conf / "upstream_auth.conf").read_text() == 'proxy_set_header Authorization "Bearer vllm-secret-123";\n'


def test_a_bad_key_file_leaves_the_previous_configuration_whole(files: dict[str, str]) -> None:
    s = settings(files)
    conf = render(s)
    before = {p: p.read_text() for p in conf.rglob("*.conf")}
    Path(files["api_keys_file"]).write_text(f"{ALICE} a\n{ALICE} b\n")
    with pytest.raises(UserError, match=r"api_keys:2: the same key appears twice \(first on line 1\); remove one"):
        stage.write_config(settings(files, rate_limit_rps=99), conf.parent, "")
    assert {p: p.read_text() for p in conf.rglob("*.conf")} == before


def test_no_active_key_and_a_bad_vllm_key_are_refused(tmp_path: Path) -> None:
    keys = tmp_path / "k"
    keys.write_text(f"{BOB} bob revoked\n")
    with pytest.raises(UserError, match=r"has no active key; add one with: ftk gateway keys add NAME"):
        nginx_conf.key_maps(read_keys(keys), keys, Settings(_env_file=None))  # type: ignore[call-arg]
    with pytest.raises(UserError, match=r"VLLM_API_KEY_FILE .*one line of A-Z"):
        nginx_conf.upstream_auth('x";\nproxy_pass http://evil', tmp_path / "v")
    assert nginx_conf.upstream_auth(None, tmp_path / "v") == 'proxy_set_header Authorization "";\n'


# ----- start checks -----------------------------------------------------------------------------------------------


def test_workers_that_cannot_reach_the_prefix_are_named(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    (locked / "gw").mkdir(parents=True)
    locked.chmod(0o700)
    with pytest.raises(UserError, match=rf"cannot reach {locked}/gw: {locked} is mode 700.*chmod o\+x {locked}"):
        stage.check_workers_reach(locked / "gw", "user nobody nogroup;")
    stage.check_workers_reach(locked / "gw", "")  # no user directive: the workers are this user


def test_a_busy_port_names_its_key(files: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        s = settings(files, gateway_internal_port=port, gateway_https_port=1, gateway_http_port=2)
        rows = registry.run(s, registry.discover(), {"gateway"})  # what `ftk run gateway` requires
    (busy_row,) = [r for r in rows if r.status == "FAIL"]
    assert busy_row.check == f"port: GATEWAY_INTERNAL_PORT={port}"
    assert f"port {port} on 127.0.0.1 is already in use" in busy_row.detail and "GATEWAY_INTERNAL_PORT" in busy_row.fix


def test_nginx_missing_only_warns_when_rendering(files: dict[str, str], monkeypatch, capsys) -> None:
    """compose's renderer (the toolkit image) has no nginx; the gateway container checks the result."""
    monkeypatch.setattr(stage, "nginx_binary", lambda: None)
    stage.run(settings(files), "render")
    assert "nginx not found: the configuration is not checked here" in capsys.readouterr().err
    with pytest.raises(UserError, match="nginx not found; run: make setup"):
        stage.run(settings(files), "prepare")


def test_prepare_renders_and_checks_without_starting(files: dict[str, str]) -> None:
    nginx()
    prefix = Path(tempfile.mkdtemp(prefix="ftk-test-gw-", dir="/tmp"))  # workers (when root) traverse /tmp
    prefix.chmod(0o755)
    try:
        env = {k.upper(): v for k, v in files.items()}
        keys = ("GATEWAY_HTTPS_PORT", "GATEWAY_HTTP_PORT", "GATEWAY_INTERNAL_PORT")
        env.update(
            {k: str(port) for k, port in zip(keys, free_ports(len(keys)), strict=True)}, GATEWAY_PREFIX=str(prefix)
        )
        r = run_ftk("run", "gateway", "--prepare", env=clean_env(**env))
        assert r.returncode == 0, r.stderr
        assert "nginx -t: configuration ok" in r.stderr
        pid = prefix / "nginx.pid"  # nginx -t leaves it empty; a started nginx writes its pid
        assert not pid.exists() or not pid.read_text().strip(), "--prepare started nginx"
    finally:
        shutil.rmtree(prefix)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()
