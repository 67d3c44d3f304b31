"""Releases: merged models (models/merged/<RUN_ID>) as versions, and the pointer (RELEASE_FILE) to the served one.

A promote goes through a gate before anything changes: the candidate folder's preflight, a new vLLM with it on a
free port, `ftk smoke` against that server (and `ftk eval`'s gate when RELEASE_EVAL=true). Then the switch: the
pointer names the new server, the gateway renders its upstream from it and reloads (nginx finishes the requests
it holds on the old workers), the old server drains and stops. A failing gate changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ftk import paths
from ftk.console import UserError, info, warn
from ftk.files import kept_old, write_atomic
from ftk.serve.client import VllmClient, read_key
from ftk.serve.preflight import check_model_folder
from ftk.serve.registry import now, who
from ftk.serve.served import NotReady, Served
from ftk.settings import Settings

HISTORY = 20  # entries kept after the current one


def _load(path: Path) -> dict[str, Any]:
    """A pointer file as {"current": {...}, "history": [...]}; OSError, ValueError or AttributeError if damaged."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"current": dict(data.get("current") or {}), "history": list(data.get("history") or [])}


def read(s: Settings) -> dict[str, Any]:
    path = s.resolved_release_file
    if not path.is_file():
        return {"current": {}, "history": []}
    try:
        return _load(path)
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"RELEASE_FILE={path} is unreadable ({err}); restore {kept_old(path)}") from None


def write(s: Settings, data: dict[str, Any]) -> None:
    write_atomic(s.resolved_release_file, json.dumps(data, indent=2) + "\n", mode=0o644, keep_old=True)


def merged_dir(s: Settings) -> Path:
    return s.path("models_dir") / "merged"


def versions(s: Settings) -> list[dict[str, Any]]:
    """Every merged model folder: run id, created, base, status (preflight), current/previous."""
    data = read(s)
    current = data["current"].get("run_id")
    previous = data["history"][0].get("run_id") if data["history"] else None
    rows = []
    folder = merged_dir(s)
    for path in (
        sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    ):
        if path.name.endswith(".prev"):
            continue
        base = _run_base(s, path.name) or _config_base(path)
        problems = check_model_folder(path, setting=f"models/merged/{path.name}")
        mark = "current" if path.name == current else "previous" if path.name == previous else ""
        rows.append(
            {
                "run_id": path.name,
                "created": time.strftime("%Y-%m-%d %H:%M", time.gmtime(path.stat().st_mtime)),
                "base": base,
                "status": "ok" if not problems else f"broken: {problems[0]}",
                "release": mark,
            }
        )
    return rows


def _run_base(s: Settings, run_id: str) -> str:
    """The base model the run trained on: runs/<RUN_ID>/manifest.json (the train stage's), '' when absent."""
    try:
        data = json.loads((s.path("runs_dir") / run_id / "manifest.json").read_text(encoding="utf-8"))
        return str((data.get("base_model") or {}).get("path") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def _config_base(path: Path) -> str:
    try:
        return str(json.loads((path / "config.json").read_text(encoding="utf-8")).get("_name_or_path") or "")
    except (OSError, ValueError):
        return ""


def preflight(s: Settings, run_id: str) -> Path:
    candidate = merged_dir(s) / run_id
    problems = check_model_folder(candidate, setting=f"release {run_id}")
    if problems:
        raise UserError(f"gate: preflight of {candidate} failed: {'; '.join(problems)}")
    return candidate


def start_candidate(s: Settings, run_id: str, folder: Path) -> Served:
    work = s.resolved_release_file.parent / "servers" / f"{run_id}-{int(time.time())}"
    work.mkdir(parents=True, exist_ok=True)
    env = {
        "SERVE_MODEL_PATH": str(folder),
        "VLLM_API_KEY_FILE": str(s.path("vllm_api_key_file")),
        "LORA_REGISTRY": str(s.resolved_lora_registry),
        "ALLOW_CPU": str(s.allow_cpu).lower(),
    }
    served = Served(f"release-{run_id}", s.served_model_name, env, work, key_path=s.path("vllm_api_key_file"))
    try:
        served.start(s.release_ready_timeout)
    except NotReady as err:
        raise UserError(f"gate: the candidate's vLLM did not start: {err}") from None
    return served


def _ftk(*args: str, folder: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`ftk ARGS` as a user runs it, with SERVE_MODEL_PATH the candidate (smoke sends an image to a VL model)."""
    env = {**os.environ, "SERVE_MODEL_PATH": str(folder)}
    return subprocess.run(
        [sys.executable, "-m", "ftk", *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def check(s: Settings, run_id: str) -> Path:
    """What a promote checks before anything starts: not the current release, the folder's preflight."""
    if read(s)["current"].get("run_id") == run_id:
        raise UserError(f"{run_id} is already the current release; `ftk release list` shows the others")
    return preflight(s, run_id)


def previous(s: Settings) -> str:
    """The release a rollback returns to: history[0]."""
    history = read(s)["history"]
    if not history or not history[0].get("run_id"):
        raise UserError(f"no previous release in {s.resolved_release_file}; nothing to roll back to")
    return str(history[0]["run_id"])


def gate(s: Settings, url: str, folder: Path, old: dict[str, Any], smoke_only: bool = False) -> None:
    """`ftk smoke` (and the eval gate when RELEASE_EVAL=true) against the candidate's own server (URL ending in
    /v1); the eval gate compares it with the current release's server (both direct, with the vLLM key)."""
    key_file = str(s.path("vllm_api_key_file"))
    r = _ftk(
        "smoke",
        "--base-url",
        url,
        "--api-key-file",
        key_file,
        "--model",
        s.served_model_name,
        "--expect",
        "",
        folder=folder,
    )
    if r.returncode != 0:
        raise UserError(f"gate: ftk smoke against {url} failed:\n{(r.stdout + r.stderr)[-2000:]}")
    info(f"gate: ftk smoke passed against {url}")
    if s.release_eval and not smoke_only:
        name = s.served_model_name
        args = ["eval", "--api-key-file", key_file, "--endpoint", f"candidate={name}@{url}"]
        if old.get("upstream"):
            args += ["--endpoint", f"release={name}@http://{old['upstream']}/v1", "--release", "release"]
            args += ["--candidate", "candidate"]
        r = _ftk(*args, folder=folder, timeout=3600)
        if r.returncode != 0:
            raise UserError(f"gate: ftk eval failed against {url}:\n{(r.stdout + r.stderr)[-2000:]}")
        info("gate: ftk eval passed")


def _stored_path(folder: Path) -> str:
    """The folder as the pointer keeps it: relative to the project home when inside it, so the host and the
    containers (FTK_HOME=/app) read the same release from one pointer."""
    home = paths.project_home()
    return str(folder.relative_to(home)) if folder.is_relative_to(home) else str(folder)


def next_pointer(data: dict[str, Any], entry: dict[str, Any], action: str) -> dict[str, Any]:
    """The pointer after a switch to `entry`: the old current becomes history[0]; a rollback takes the release it
    returns to out of the history, so a second rollback goes back to the release left."""
    old = data["current"]
    if action == "rollback" and data["history"]:
        return {"current": entry, "history": [old, *data["history"][1 : HISTORY + 1]]}
    return {"current": entry, "history": ([old] if old else []) + data["history"][:HISTORY]}


def record(
    s: Settings, run_id: str, folder: Path, upstream: str, action: str, pid: int = 0, log: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the pointer for a switch to `run_id` on `upstream`; returns the pointer before and the new entry."""
    if action not in ("promote", "rollback"):
        raise UserError(f"action {action!r}: use promote or rollback")
    data = read(s)
    entry = {
        "run_id": run_id,
        "path": _stored_path(folder),
        "upstream": upstream,
        "pid": pid,
        "log": log,
        "at": now(),
        "by": who(),
        "action": action,
    }
    write(s, next_pointer(data, entry, action))
    return data, entry


def undo_record(s: Settings, run_id: str, upstream: str) -> dict[str, Any]:
    """Take back the switch's pointer write when the gateway did not reload (it still runs the old
    configuration): the version kept as RELEASE_FILE.bak comes back, but only while the pointer is still the one
    `record` wrote (`run_id` on `upstream`), so a later write is never lost. Returns the restored current entry."""
    current = read(s)["current"]
    if (current.get("run_id"), current.get("upstream")) != (run_id, upstream):
        raise UserError(
            f"the release pointer names {current.get('run_id') or '(none)'} on {current.get('upstream') or '-'}, "
            f"not {run_id} on {upstream}: nothing to undo (scripts/release.sh list shows it)"
        )
    backup = kept_old(s.resolved_release_file)
    try:
        old = _load(backup)
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"{backup} is unreadable ({err}); the pointer stays on {run_id}") from None
    write(s, old)
    return old["current"]


def repoint(s: Settings, run_id: str, upstream: str) -> dict[str, Any]:
    """The current release moved to another server (compose: from the candidate container back to `serve`): only
    the current entry's upstream changes, the history stays."""
    data = read(s)
    current = data["current"]
    if current.get("run_id") != run_id:
        raise UserError(
            f"the current release is {current.get('run_id') or '(none)'}, not {run_id}: "
            "repoint moves only the current release to another server"
        )
    data["current"] = {**current, "upstream": upstream, "pid": 0, "log": "", "moved_at": now()}
    write(s, data)
    return data["current"]


def gateway_running(s: Settings) -> bool:
    try:
        pid = int((s.path("gateway_prefix") / "nginx.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def reload_gateway(s: Settings) -> None:
    if not gateway_running(s):
        warn(f"no gateway runs from {s.path('gateway_prefix')}: it serves the release once started")
        return
    script = paths.project_home() / "scripts" / "gateway.sh"
    r = subprocess.run([str(script), "--reload"], capture_output=True, text=True, timeout=120, check=False)
    if r.returncode != 0:
        raise UserError(f"gateway reload failed:\n{(r.stdout + r.stderr)[-2000:]}")
    info("gateway reloaded: new requests go to the new release")


def _busy(client: VllmClient) -> float:
    """Requests running or waiting on a vLLM (its Prometheus /metrics); -1 when it does not answer."""
    try:
        with client._client() as c:
            text = c.get("/metrics").text
    except Exception:
        return -1
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("vllm:num_requests_running", "vllm:num_requests_waiting")):
            total += float(line.rsplit(" ", 1)[-1])
    return total


def _ours(pid: int) -> bool:
    """The process is still the serve stage we started (a pid may be reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"vllm" in cmdline or b"serve" in cmdline


def drain(s: Settings, upstream: str) -> bool:
    """Wait until the server at `upstream` has no request running or waiting (2 s in a row), at most
    RELEASE_DRAIN_TIMEOUT; False when it was still busy then."""
    client = VllmClient(f"http://{upstream}", read_key(s.path("vllm_api_key_file")), timeout=5)
    deadline, quiet = time.monotonic() + s.release_drain_timeout, 0
    while time.monotonic() < deadline and quiet < 4:
        quiet = quiet + 1 if _busy(client) <= 0 else 0
        time.sleep(0.5)
    if quiet < 4:
        warn(f"{upstream} still had requests after RELEASE_DRAIN_TIMEOUT={s.release_drain_timeout}s")
        return False
    info(f"{upstream} drained: no request running or waiting")
    return True


def drain_and_stop(s: Settings, entry: dict[str, Any]) -> None:
    """Wait until the old server is drained, then stop its process group."""
    upstream, pid = entry.get("upstream"), int(entry.get("pid") or 0)
    if not upstream or not pid:
        warn("the previous release's server was not started by `ftk release`; stop it yourself once drained")
        return
    drain(s, upstream)
    stop(pid)
    info(f"stopped the previous release's server {upstream} (pid {pid})")


def stop(pid: int) -> None:
    if not pid or not _ours(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(120):
        if not _ours(pid):
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def switch(s: Settings, run_id: str, action: str) -> dict[str, Any]:
    """The gate, then the switch; the current release keeps serving when any step before the switch fails."""
    old = read(s)["current"]
    folder = preflight(s, run_id)
    info(f"gate: preflight of {folder} passed; starting a vLLM with it")
    served = start_candidate(s, run_id, folder)
    try:
        gate(s, f"{served.url}/v1", folder, old)
    except UserError:
        served.stop()
        raise
    pid = served.proc.pid if served.proc else 0
    data, entry = record(s, run_id, folder, f"127.0.0.1:{served.port}", action, pid=pid, log=str(served.log))
    try:
        reload_gateway(s)
    except UserError:
        write(s, data)  # the old pointer back: the gateway still runs the old configuration
        served.stop()
        raise
    if old:
        drain_and_stop(s, old)
    return entry
