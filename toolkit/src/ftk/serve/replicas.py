"""One adapter change on every vLLM replica of the gateway, all or none; drift between replicas and registry."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ftk.serve.client import ServerError, VllmClient
from ftk.serve.registry import Entry


class ReplicaError(Exception):
    """The change failed on a replica (named in the message) and was undone on the others."""


def _url(server: str) -> str:
    """A base URL: host:port as VLLM_UPSTREAMS lists it gets http://."""
    return server if "://" in server else f"http://{server}"


def expand(server: str, resolve: Callable[..., list[Any]] = socket.getaddrinfo) -> list[str]:
    """One base URL per IPv4 address a server's name resolves to: compose's `--scale serve=N` replicas all answer
    to the name `serve`, and nginx too sends to each address it resolved. An unresolvable name stays as it is
    (the client's error then names it)."""
    url = _url(server)
    parts = urlsplit(url)
    try:
        found = resolve(parts.hostname, parts.port or 80, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return [url]
    ips = sorted({info[4][0] for info in found})
    if len(ips) < 2:
        return [url]
    return [f"{parts.scheme}://{ip}:{parts.port or 80}" for ip in ips]


def clients(servers: list[str], key: str, timeout: float = 120.0, each_address: bool = True) -> list[VllmClient]:
    """A client per vLLM replica (VLLM_UPSTREAMS' internal addresses, each name expanded to its addresses unless
    `each_address` is false: one server named on purpose), with the vLLM key."""
    urls = [u for s in servers for u in expand(s)] if each_address else [_url(s) for s in servers]
    return [VllmClient(url, key, timeout=timeout) for url in urls]


def load_everywhere(replicas: list[VllmClient], name: str, path: Path) -> None:
    """Load on each replica in turn; on the first failure unload it again where it loaded, then raise."""
    done: list[VllmClient] = []
    for client in replicas:
        try:
            client.load_lora(name, str(path))
        except ServerError as err:
            undone = []
            for other in done:
                try:
                    other.unload_lora(name)
                    undone.append(other.base_url)
                except ServerError:
                    pass
            note = f"; unloaded again on {', '.join(undone)}" if undone else ""
            raise ReplicaError(f"replica {client.base_url}: {err}{note}") from None
        done.append(client)


def unload_everywhere(replicas: list[VllmClient], name: str) -> list[str]:
    """Unload on every replica that has it; (replica: reason) for each that could not be reached or refused."""
    failures = []
    for client in replicas:
        try:
            if name in adapters_on(client):
                client.unload_lora(name)
        except ServerError as err:
            failures.append(f"replica {client.base_url}: {err}")
    return failures


def adapters_on(client: VllmClient) -> dict[str, str]:
    """name -> path of the adapters a replica serves (the /v1/models entries that have a parent)."""
    return {m.get("id", ""): m.get("root") or "" for m in client.models() if m.get("parent")}


@dataclass
class Drift:
    replica: str
    adapter: str
    problem: str  # missing | extra | other path | unreachable
    detail: str = ""
    fixed: str = ""


def drift(replicas: list[VllmClient], entries: list[Entry]) -> list[Drift]:
    wanted = {e.name: e.path for e in entries}
    found: list[Drift] = []
    for client in replicas:
        try:
            have = adapters_on(client)
        except ServerError as err:
            found.append(Drift(client.base_url, "-", "unreachable", str(err)))
            continue
        for name, path in sorted(wanted.items()):
            if name not in have:
                found.append(Drift(client.base_url, name, "missing", f"registry: {path}"))
            elif have[name] and have[name] != path:
                found.append(Drift(client.base_url, name, "other path", f"{have[name]} (registry: {path})"))
        for name in sorted(set(have) - set(wanted)):
            found.append(Drift(client.base_url, name, "extra", f"not in the registry ({have[name]})"))
    return found


def fix(replicas: list[VllmClient], entries: list[Entry], found: list[Drift]) -> None:
    """Make each drifting replica match the registry; each row's `fixed` says what happened."""
    by_url = {c.base_url: c for c in replicas}
    wanted = {e.name: e.path for e in entries}
    for row in found:
        client = by_url[row.replica]
        try:
            if row.problem == "unreachable":
                row.fixed = "no (start it: it loads the registry)"
                continue
            if row.problem in ("extra", "other path"):
                client.unload_lora(row.adapter)
            if row.problem in ("missing", "other path"):
                client.load_lora(row.adapter, wanted[row.adapter])
            row.fixed = "yes"
        except ServerError as err:
            row.fixed = f"no: {err}"
