"""A vLLM server started through scripts/serve.sh on a free port, for callers that measure it (gpu-check, the
benchmarks in tools/bench/): it waits until healthy, records the start-up time, and stops the whole process
group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ftk import paths
from ftk.console import info
from ftk.serve.client import VllmClient, read_key


class NotReady(RuntimeError):
    """The server exited or did not become healthy in time; the message names its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    label: str
    model_name: str  # the name /v1/models must list before the server counts as ready
    env: dict[str, str]  # settings for scripts/serve.sh; they win over the defaults set in start()
    work: Path  # holds the log and the server's key file
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    startup: float = 0.0
    key_path: Path | None = None  # the shared key file (a release behind the gateway); default: one in `work`

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key_file(self) -> Path:
        return self.key_path or self.work / "vllm_api_key"

    @property
    def log(self) -> Path:
        return self.work / f"{self.label}.log"

    def start(self, timeout: float) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(
            FTK_HOME=str(paths.project_home()),
            NO_COLOR="1",
            ALLOW_CPU="true",
            VLLM_HOST="127.0.0.1",
            VLLM_PORT=str(self.port),
            VLLM_API_KEY_FILE=str(self.key_file),
            RUNS_DIR=str(self.work / "runs"),
        )
        env.update(self.env)  # the caller's values win (ALLOW_CPU=false on a GPU host: gpu-check)
        info(f"starting {self.label} on :{self.port} (scripts/serve.sh, log {self.log})")
        start = time.monotonic()
        with self.log.open("ab") as f:
            self.proc = subprocess.Popen(
                [str(paths.project_home() / "scripts" / "serve.sh")],
                stdout=f,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        while not self.key_file.is_file() and self.alive():
            time.sleep(0.2)
        client = VllmClient(self.url, read_key(self.key_file), timeout=10)
        ok, status, _ = client.wait([self.model_name], timeout, interval=0.5, alive=self.alive)
        if not ok:
            self.stop()
            raise NotReady(f"{self.label}: vLLM not ready ({status}); see {self.log}")
        self.startup = time.monotonic() - start

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
