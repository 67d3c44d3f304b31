"""`ftk run gateway`: nginx's configuration written into GATEWAY_PREFIX from the settings and checked with
`nginx -t`; then, unless only rendering, the start checks and nginx itself in the foreground (this process
becomes nginx). scripts/gateway.sh makes the TLS certificate first and keeps the process control around it:
--daemon, --stop, --reload, and the compose container, whose nginx image has no ftk."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Literal

from ftk.console import UserError, info, warn
from ftk.files import write_atomic
from ftk.gateway import nginx_conf
from ftk.gateway.keys import KeyRecord, read_keys
from ftk.secret_file import write_secret
from ftk.settings import Settings
from ftk.stages import checks

# render: write and check (--render-only, --reload, compose's gateway-config); prepare: and the start checks
# (scripts/gateway.sh --daemon then starts nginx); foreground: and become nginx.
Mode = Literal["render", "prepare", "foreground"]
NEXT = {"render": "", "prepare": ", then the start checks", "foreground": ", then nginx in the foreground"}

WORKER_USERS = ("www-data", "nginx", "nobody")  # who nginx's workers run as when the master is root
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
HEALTH = '{"status":"ok"}\n'


def run(s: Settings, mode: Mode) -> None:
    prefix = s.path("gateway_prefix")
    directive = user_directive()
    info(f"gateway: rendering nginx's configuration into {prefix}{NEXT[mode]}")
    write_config(s, prefix, directive)
    binary = nginx_binary()
    if binary is None and mode != "render":
        raise UserError("nginx not found; run: make setup (scripts/setup.sh debian), or apt-get install nginx")
    if binary is None:
        # compose's renderer (the toolkit image): the gateway container runs nginx -t before nginx starts
        warn("nginx not found: the configuration is not checked here (make setup installs nginx natively)")
    else:
        nginx_test(binary, prefix)
    if mode == "render" or binary is None:
        info(f"rendered {prefix / 'conf' / 'nginx.conf'}")
        return
    check_workers_reach(prefix, directive)
    checks.require(s, "gateway")  # the ports (ftk doctor --stage gateway)
    if mode == "foreground":
        info(
            f"nginx in the foreground: https://{s.gateway_bind}:{s.gateway_https_port} (public), "
            f"http://{s.gateway_internal_bind}:{s.gateway_internal_port} (internal)"
        )
        sys.stderr.flush()
        os.execv(binary, [*nginx_argv(binary, prefix), "-g", "daemon off;"])


def write_config(s: Settings, prefix: Path, directive: str) -> None:
    """Everything is made first and written only when all of it is valid, so a bad key file never leaves a
    half-new configuration for the next reload."""
    for field in ("tls_cert", "tls_key"):
        if not s.path(field).is_file():
            raise UserError(
                f"{field.upper()} {s.path(field)} does not exist; make it with scripts/certs.sh (scripts/gateway.sh "
                f"does when it is missing), or point {field.upper()} at your own"
            )
    conf = prefix / "conf"
    templates = nginx_conf.render_templates(s, directive)
    keys_file, vllm_key_file = s.path("api_keys_file"), s.path("vllm_api_key_file")
    records = read_key_file(keys_file)
    maps = nginx_conf.key_maps(records, keys_file, s)
    limits = nginx_conf.key_limits(records, s)
    auth = nginx_conf.upstream_auth(read_vllm_key(vllm_key_file), vllm_key_file)
    make_prefix(prefix)
    for rel, text in templates.items():
        write_atomic(conf / rel, text, mode=0o644)
    write_secret(conf / "api_keys.conf", maps)
    write_atomic(conf / "key_limits.conf", limits, mode=0o644)
    write_secret(conf / "upstream_auth.conf", auth)
    write_atomic(prefix / "html" / "health.json", HEALTH, mode=0o644)
    active = sum(r.status == "active" for r in records)
    info(f"API keys: {active} active from {keys_file}; upstreams: {', '.join(s.vllm_servers)}")


def make_prefix(prefix: Path) -> None:
    # 0755: workers dropped from root read html/ and write temp/
    for sub in ("conf/snippets", "conf/njs", "logs", "html", *(f"temp/{t}" for t in TEMP_DIRS)):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("", "conf", "conf/snippets", "conf/njs", "logs", "html", "temp"):
        (prefix / sub).chmod(0o755)


def read_key_file(path: Path) -> list[KeyRecord]:
    if not path.is_file():
        raise UserError(f"API_KEYS_FILE {path} does not exist; create a key with: ftk gateway keys add NAME")
    if not os.access(path, os.R_OK):
        raise UserError(f"API_KEYS_FILE {path} is not readable by {pwd_name()}; fix its owner (chmod 600, chown)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode not in (0o600, 0o400):
        warn(f"API_KEYS_FILE {path} has mode {mode:o}; it holds secrets: chmod 600 {path}")
    return read_keys(path)


def read_vllm_key(path: Path) -> str | None:
    if not path.is_file():
        warn(f"VLLM_API_KEY_FILE {path} does not exist: vLLM gets no key from the gateway (serve.sh makes it)")
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return "".join(lines[0].split()) if lines else ""


def pwd_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # an uid without a passwd entry (compose's FTK_UID)
        return f"uid {os.geteuid()}"


def user_directive() -> str:
    """`user NAME GROUP;` when nginx starts as root (its workers drop to that user), else nothing."""
    if os.geteuid() != 0:
        return ""
    for name in WORKER_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return f"user {name} {grp.getgrgid(entry.pw_gid).gr_name};"
    return ""


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def nginx_argv(binary: str, prefix: Path) -> list[str]:
    return [binary, "-p", f"{prefix}/", "-c", str(prefix / "conf" / "nginx.conf"), "-e", str(prefix / "logs/error.log")]


def nginx_test(binary: str, prefix: Path) -> None:
    res = subprocess.run([*nginx_argv(binary, prefix), "-t"], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise UserError(f"nginx -t refused {prefix / 'conf' / 'nginx.conf'} (see above); fix the setting it names")
    info("nginx -t: configuration ok")


def check_workers_reach(prefix: Path, directive: str) -> None:
    """Workers of another user (the `user` directive) must traverse every folder above the prefix."""
    if not directive:
        return
    for folder in (prefix, *prefix.parents[:-1]):  # the root folder itself is always traversable
        mode = stat.S_IMODE(folder.stat().st_mode)
        if not mode & stat.S_IXOTH:
            raise UserError(
                f"nginx workers ({directive}) cannot reach {prefix}: {folder} is mode {mode:o}; choose a "
                f"GATEWAY_PREFIX under folders others can traverse, or chmod o+x {folder}"
            )
