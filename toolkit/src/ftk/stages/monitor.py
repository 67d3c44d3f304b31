"""`ftk run monitor`: Prometheus' configuration written into MONITOR_DIR from the settings and checked with
`promtool check config` (the alert rules with it); then, unless only rendering, the port check and Prometheus
itself in the foreground (this process becomes Prometheus). scripts/monitor.sh keeps --daemon and --stop."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

from ftk.console import UserError, info, warn
from ftk.files import write_atomic
from ftk.monitor import prometheus_conf
from ftk.ports import bracketed
from ftk.settings import Settings
from ftk.stages import checks

# render: write and check (--render-only, compose's monitor-config); prepare: and the port check
# (scripts/monitor.sh --daemon then starts it); foreground: and become Prometheus.
Mode = Literal["render", "prepare", "foreground"]
NEXT = {"render": "", "prepare": ", then the port check", "foreground": ", then Prometheus in the foreground"}
RETENTION = "15d"


def run(s: Settings, mode: Mode, rules: Path | None = None) -> None:
    folder = s.path("monitor_dir")
    config = folder / "prometheus.yml"
    info(f"monitor: rendering {config}{NEXT[mode]}")
    rules = rules or prometheus_conf.rules_dir()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    write_atomic(config, prometheus_conf.render(s, rules), mode=0o644)
    promtool_check(config)
    jobs = prometheus_conf.targets(s)
    vllm = [*jobs["vllm"], *([f"every A record of {s.prometheus_vllm_dns_sd}"] if s.prometheus_vllm_dns_sd else [])]
    info(f"rendered {config} (vllm: {', '.join(vllm)}; gateway: {', '.join(jobs['gateway'])}; rules: {rules})")
    if mode == "render":
        return
    binary = shutil.which("prometheus")
    if binary is None:
        raise UserError("prometheus not found; install prometheus (make setup does)")
    checks.require(s, "monitor")  # the port (ftk doctor --stage monitor)
    if mode == "foreground":
        info(f"Prometheus in the foreground on {s.prometheus_bind}:{s.prometheus_port}")
        sys.stderr.flush()
        os.execv(binary, [binary, *prometheus_args(s, config)])


def promtool_check(config: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        # Prometheus checks the file itself when it starts
        warn(f"promtool not found: {config} is not checked here (make setup installs it natively)")
        return
    res = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, check=False)
    write_atomic(config.with_name("promtool.log"), res.stdout + res.stderr, mode=0o644)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise UserError(f"promtool check config refused {config} (see above); fix the setting it names")


def prometheus_args(s: Settings, config: Path) -> list[str]:
    return [
        f"--config.file={config}",
        f"--storage.tsdb.path={config.parent / 'data'}",
        f"--web.listen-address={bracketed(s.prometheus_bind)}:{s.prometheus_port}",
        f"--storage.tsdb.retention.time={RETENTION}",
        "--web.enable-lifecycle",
    ]
