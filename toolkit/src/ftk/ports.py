"""Addresses and ports as the stages use them: a wildcard bind probed on loopback, IPv6 hosts in brackets."""

from __future__ import annotations

import socket

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "*": "127.0.0.1", "::": "::1", "[::]": "::1"}


def local_address(host: str) -> str:
    """Where a client on this host reaches a server bound to `host` (a wildcard: loopback)."""
    return WILDCARDS.get(host, host).strip("[]")


def bracketed(host: str) -> str:
    """`host` as the host part of host:port (nginx `listen`, Prometheus targets): IPv6 in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def port_in_use(host: str, port: int) -> bool:
    """Something accepts connections on host:port (connecting is what a second server's bind would collide with)."""
    try:
        with socket.create_connection((local_address(host), port), timeout=0.5):
            return True
    except OSError:
        return False
