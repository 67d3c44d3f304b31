"""`ftk lora load|unload|sync` reach every replica: a name with several addresses (compose's `--scale serve=N`
replicas all answer to `serve`) becomes one client per address; a name with one address, or none, stays as given."""

from __future__ import annotations

import socket

from ftk.serve import replicas


def two_replicas(host, port, family, kind):
    assert family == socket.AF_INET and kind == socket.SOCK_STREAM
    return [(family, kind, 6, "", (ip, port)) for ip in ("172.18.0.7", "172.18.0.5", "172.18.0.7")]


def test_a_name_with_two_addresses_is_two_replicas() -> None:
    got = replicas.expand("serve:8000", resolve=two_replicas)
    assert got == ["http://172.18.0.5:8000", "http://172.18.0.7:8000"]


def test_a_name_with_one_address_stays_a_name() -> None:
    assert replicas.expand("localhost:8000") == ["http://localhost:8000"]  # real resolver; ::1 not counted twice
    assert replicas.expand("http://127.0.0.1:8001") == ["http://127.0.0.1:8001"]


def test_an_unresolvable_name_stays_for_the_client_to_name() -> None:
    assert replicas.expand("no-such-replica.invalid:8000") == ["http://no-such-replica.invalid:8000"]


def test_clients_cover_every_address() -> None:
    urls = [c.base_url for c in replicas.clients(["127.0.0.1:8001", "localhost:8002"], "k")]
    assert urls == ["http://127.0.0.1:8001", "http://localhost:8002"]
