"""A compose project for the tests: a copy of this checkout owned by TEST_UID, its own `.env`, and the real
`docker compose` (the v2 plugin `scripts/setup.sh docker` installs) run in it as a user would."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import HOME, TIMINGS, VENVS

TEST_UID = 4321  # the "host user" who owns the copy; not root, so ownership mistakes show
# compose project name: never the user's own `ftk` stack, nor the stack of another checkout's tests on this engine
# (its `down` would remove this one's containers mid-run); the same name each run, so a killed run's leftovers go
PROJECT = "ftktest-" + hashlib.sha256(str(HOME).encode()).hexdigest()[:8]
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")  # extra CAs of this host (an intercepting proxy)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_files() -> list[str]:
    """Tracked and new (not ignored) files of the checkout: what a clone holds."""
    out = subprocess.run(
        ["git", "-C", str(HOME), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [f for f in out.stdout.split("\0") if f and (HOME / f).is_file()]


def chown_tree(root: Path, uid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), uid, uid)
    os.lchown(root, uid, uid)


@dataclass
class Stack:
    root: Path
    project: str = PROJECT

    @classmethod
    def create(cls, base: Path, env: dict[str, str]) -> Stack:
        if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
            pytest.fail("no Docker engine answers: run scripts/setup.sh docker (make compose-test does)")
        root = base / "project"
        for rel in project_files():
            dest = root / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HOME / rel, dest)
        todo = dict(env)
        lines = []
        for line in (HOME / ".env.example").read_text().splitlines():  # one value a key, as a user edits it
            key = line.partition("=")[0]
            lines.append(f"{key}={todo.pop(key)}" if key in todo else line)
        lines += [f"{k}={v}" for k, v in todo.items()]
        (root / ".env").write_text("\n".join(lines) + "\n")
        chown_tree(root, TEST_UID)
        os.chmod(base, 0o755)
        stack = cls(root)
        stack.down()  # a stack a killed earlier run left behind
        return stack

    # --- running things ---------------------------------------------------------------------------------
    def run(self, cmd: list[str], timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
        # the project copy is FTK_HOME (scripts/test.sh exports the checkout's own: never build from there)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("FTK_", "PYTEST_"))}
        full_env = {**inherited, "COMPOSE_BAKE": "false", "FTK_VENVS": str(VENVS), "FTK_HOME": str(self.root), **env}
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, env=full_env)

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.run(["docker", "compose", "-p", self.project, *args], timeout=timeout)

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        r = self.run(["docker", *args], timeout=120)
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
        return r

    def timed(self, stage: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        r = self.compose(*args, timeout=timeout)
        TIMINGS[f"stage {stage}"] = time.monotonic() - started
        return r

    def build_images(self) -> None:
        cas = [a for crt in sorted(HOST_CA_DIR.glob("*.crt")) for a in ("--extra-ca", str(crt))]
        started = time.monotonic()
        r = self.run(["bash", "scripts/images.sh", "--cpu", *cas], timeout=3000)
        assert r.returncode == 0, f"scripts/images.sh --cpu failed:\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
        TIMINGS["images (all, scripts/images.sh --cpu)"] = time.monotonic() - started
        for line in r.stdout.splitlines():  # the table images.sh prints: IMAGE BUILD SIZE
            fields = line.split()
            if len(fields) == 3 and fields[1].endswith("s") and fields[1][:-1].isdigit():
                TIMINGS[f"image {fields[0]} ({fields[2]})"] = float(fields[1][:-1])

    def seed_model_cache(self, model: Path, model_id: str) -> None:
        """The model in ModelScope's cache layout, as an offline host pre-seeds it (docs/download.md)."""
        assert (model / "config.json").is_file(), f"{model} is missing: run make setup (scripts/setup.sh model)"
        dest = self.root / ".cache" / "modelscope" / "models" / model_id
        shutil.copytree(model, dest, dirs_exist_ok=True)
        chown_tree(self.root / ".cache", TEST_UID)

    def ftk_on_host(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The host's `ftk` against this project's files (its .env: the gateway's published port, the CA)."""
        v = self.env_file_values()
        env = {
            "FTK_HOME": str(self.root),
            "FTK_ENV_FILE": str(self.root / ".env"),
            "SMOKE_BASE_URL": self.gateway_url(),
            "TLS_CA": str(self.ca()),
            "API_KEYS_FILE": str(self.root / v["API_KEYS_FILE"]),
        }
        return self.run([str(VENVS / "toolkit" / "bin" / "ftk"), *args], timeout=300, **env)

    def add_key(self, name: str, *policy: str) -> str:
        """A client key made as a compose user does (docs/gpu-host.md): the toolkit image's `ftk` on the project's
        key file, through `docker compose run --rm ftk`. Returns the key it printed."""
        r = self.compose("run", "--rm", "-T", "ftk", "gateway", "keys", "add", name, "--quiet", *policy, timeout=300)
        assert r.returncode == 0, f"ftk gateway keys add {name} failed:\n{r.stdout}\n{r.stderr}"
        return r.stdout.strip().splitlines()[-1]

    def apply_key_changes(self) -> None:
        """Key changes applied as docs/gpu-host.md says: gateway-config renders again, SIGHUP makes nginx reload it.
        nginx only starts the reload then: callers wait for the new configuration to answer."""
        r = self.compose("run", "--rm", "-T", "gateway-config", timeout=300)
        assert r.returncode == 0, f"gateway-config failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        r = self.compose("kill", "-s", "HUP", "gateway", timeout=60)
        assert r.returncode == 0, f"docker compose kill -s HUP gateway failed: {r.stderr}"

    def running(self, service: str) -> list[str]:
        """Ids of the service's running containers (every replica of `--scale`)."""
        r = self.compose("ps", "-q", "--status", "running", service)
        return r.stdout.split()

    def vllm_successes(self, container: str) -> float:
        """One replica's own count of finished requests: vLLM's /metrics read inside its container (the port is on
        the internal network only)."""
        port = self.env_file_values()["VLLM_PORT"]
        code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/metrics').read().decode())"
        text = self.docker("exec", container, "python3", "-c", code).stdout
        lines = text.splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("vllm:request_success"))

    def address(self, container: str) -> str:
        """The container's address on the backend network (what nginx and Prometheus resolve `serve` to)."""
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
        return self.docker("inspect", "--format", fmt, container).stdout.split()[0]

    def access_log(self) -> list[dict]:
        """The gateway's JSON access log (runs/gateway/logs, a bind mount of the project)."""
        path = self.root / self.env_file_values().get("RUNS_DIR", "runs") / "gateway" / "logs" / "access.log"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def set_env(self, **values: str) -> None:
        """Change keys of the project's .env in place, as a user edits it (the file keeps its owner)."""
        path, todo = self.root / ".env", dict(values)
        lines = []
        for line in path.read_text().splitlines():
            key = line.partition("=")[0].strip()
            lines.append(f"{key}={todo.pop(key)}" if key in todo and not line.lstrip().startswith("#") else line)
        path.write_text("\n".join([*lines, *(f"{k}={v}" for k, v in todo.items())]) + "\n")

    def down(self) -> None:
        self.compose("--profile", "*", "down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300)

    # --- what the tests look at --------------------------------------------------------------------------
    def env_file_values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in (self.root / ".env").read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                out[key.strip()] = value.strip().strip('"')
        return out

    def gateway_url(self) -> str:
        return f"https://localhost:{self.env_file_values()['GATEWAY_HTTPS_PORT']}/v1"

    def ca(self) -> Path:
        return self.root / self.env_file_values()["TLS_CA"]

    def client_key(self) -> str:
        for line in (self.root / self.env_file_values()["API_KEYS_FILE"]).read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 3 and fields[2] == "active":
                return fields[0]
        raise AssertionError("no active client key")

    def secret_values(self) -> dict[str, str]:
        v = self.env_file_values()
        files = {
            "vLLM key": v["VLLM_API_KEY_FILE"],
            "Grafana password": v["GRAFANA_ADMIN_PASSWORD_FILE"],
            "TLS key": v["TLS_KEY"],
        }
        out = {name: (self.root / rel).read_text().strip() for name, rel in files.items()}
        out["TLS key"] = out["TLS key"].splitlines()[1]  # a line of the PEM body
        out["client key"] = self.client_key()
        return out

    def container_id(self, service: str) -> str:
        r = self.compose("ps", "-q", service)
        assert r.stdout.strip(), f"no container for {service}: {r.stderr}"
        return r.stdout.split()[0]

    def container_restarts(self, service: str) -> int:
        r = self.docker("inspect", "--format", "{{.RestartCount}}", self.container_id(service))
        return int(r.stdout.strip())

    def containers(self) -> list[dict]:
        r = self.docker("ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={self.project}")
        return json.loads(self.docker("inspect", *r.stdout.split()).stdout) if r.stdout.strip() else []

    def inspect_all_containers(self) -> list[str]:
        return [json.dumps(c) for c in self.containers()]

    def image_histories(self) -> list[str]:
        images = {c["Config"]["Image"] for c in self.containers()}
        return [self.docker("history", "--no-trunc", image).stdout for image in sorted(images)]

    def published_ports(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for c in self.containers():
            service = c["Config"]["Labels"]["com.docker.compose.service"]
            for bindings in (c["HostConfig"].get("PortBindings") or {}).values():
                for b in bindings or []:
                    out.setdefault(service, []).append((b.get("HostIp", ""), b.get("HostPort", "")))
        return out

    def logs(self, service: str) -> str:
        r = self.compose("logs", "--no-color", "--tail", "200", service, timeout=60)
        return r.stdout + r.stderr
