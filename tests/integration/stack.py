"""Real processes for the gateway and monitoring tests: vLLM through scripts/serve.sh, nginx through
scripts/gateway.sh, Prometheus through scripts/monitor.sh, each on free 127.0.0.1 ports, stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from ftk.gateway.keys import add_key_via_cli

HOME = Path(__file__).resolve().parents[2]
VENVS = Path(os.environ.get("FTK_VENVS", HOME / ".venvs"))
MODEL = HOME / "models" / "SmolLM2-135M-Instruct"


def open_dir(prefix: str) -> Path:
    """A temporary folder that nginx's worker user can traverse (pytest's own tmp folders are 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTK_", "PYTEST_"))}
    env.update(
        FTK_HOME=str(HOME),
        FTK_ENV_FILE="/nonexistent/.env",
        NO_COLOR="1",
        ALLOW_CPU="true",
    )
    env.update(extra)
    return env


def require_real_parts() -> None:
    for path, what in (
        (VENVS / "serve" / "bin" / "python", "the serve venv"),
        (MODEL / "config.json", "the default model"),
        (VENVS / "toolkit" / "bin" / "ftk", "the toolkit venv"),
    ):
        if not path.exists():
            pytest.fail(f"{what} is missing ({path}): run `make setup`")
    for tool in ("nginx", "prometheus", "promtool", "openssl"):
        if not any(Path(d, tool).exists() for d in (*os.environ.get("PATH", "").split(":"), "/usr/sbin")):
            pytest.fail(f"{tool} is missing: run `make setup` (scripts/setup.sh debian)")


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process we started with start_new_session=True, and its children (vLLM's engine core)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@dataclass
class Vllm:
    dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def key_file(self) -> Path:
        return self.dir / "vllm_api_key"

    @property
    def log(self) -> Path:
        return self.dir / "vllm.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = base_env(
            VLLM_HOST="127.0.0.1",
            VLLM_PORT=str(self.port),
            VLLM_API_KEY_FILE=str(self.key_file),
            RUNS_DIR=str(self.dir / "runs"),
            MODEL_ID=str(MODEL),
            SERVED_MODEL_NAME="base",
            CPU_KV_CACHE_BYTES="256M",
            MAX_MODEL_LEN="1024",
        )
        env.update(self.extra_env)  # the test's values win (a key file shared by replicas)
        return env

    def start(self, timeout: float = 900) -> Vllm:
        return self.launch().wait(timeout)

    def launch(self) -> Vllm:
        """Start scripts/serve.sh without waiting (replicas start side by side)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(HOME / "scripts" / "serve.sh")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(),
                cwd=HOME,
                start_new_session=True,
            )
        return self

    def wait(self, timeout: float = 900) -> Vllm:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"scripts/serve.sh exited with {self.proc.returncode}; log {self.log}:\n"
                    + self.log.read_text()[-3000:]
                )
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        pytest.fail(f"vLLM not healthy after {timeout}s; log {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)


@dataclass
class Gateway:
    dir: Path
    upstreams: str
    vllm_key_file: Path
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    internal_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> Path:
        return self.dir / "gateway"

    @property
    def keys_file(self) -> Path:
        return self.dir / "api_keys"

    @property
    def ca(self) -> Path:
        return self.dir / "certs" / "ca.crt"

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "logs" / "access.log"

    def env(self) -> dict[str, str]:
        certs = self.dir / "certs"
        return base_env(
            GATEWAY_PREFIX=str(self.prefix),
            GATEWAY_HTTPS_PORT=str(self.https_port),
            GATEWAY_HTTP_PORT=str(self.http_port),
            GATEWAY_INTERNAL_PORT=str(self.internal_port),
            VLLM_UPSTREAMS=self.upstreams,
            API_KEYS_FILE=str(self.keys_file),
            VLLM_API_KEY_FILE=str(self.vllm_key_file),
            TLS_CERT=str(certs / "server.crt"),
            TLS_KEY=str(certs / "server.key"),
            TLS_CA=str(self.ca),
            **self.extra_env,
        )

    def add_key(self, name: str) -> str:
        return add_key_via_cli(self.keys_file, name, env=self.env())

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [str(HOME / "scripts" / "gateway.sh"), *args],
            check=False,
            capture_output=True,
            text=True,
            env=self.env(),
            cwd=HOME,
            timeout=120,
        )
        if check:
            assert res.returncode == 0, res.stdout + res.stderr
        return res

    def start(self) -> Gateway:
        self.script("--daemon")
        return self

    def stop(self) -> None:
        self.script("--stop", check=False)

    def client(self, key: str | None = None, **kw) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.base_url,
            verify=ssl.create_default_context(cafile=str(self.ca)),
            headers=headers,
            timeout=120,
            **kw,
        )
