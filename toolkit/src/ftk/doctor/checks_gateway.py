"""Gateway- and monitor-stage checks: the ports nginx and Prometheus bind are free."""

from __future__ import annotations

from collections.abc import Iterator

from ftk.doctor import resources
from ftk.doctor.registry import Result, check
from ftk.settings import Settings


@check("port", stage="gateway", order=10)
def gateway_ports(s: Settings) -> Iterator[Result]:
    yield resources.port_free("GATEWAY_HTTPS_PORT", s.gateway_bind, s.gateway_https_port)
    yield resources.port_free("GATEWAY_HTTP_PORT", s.gateway_bind, s.gateway_http_port)
    yield resources.port_free("GATEWAY_INTERNAL_PORT", s.gateway_internal_bind, s.gateway_internal_port)


@check("port", stage="monitor", order=10)
def prometheus_port(s: Settings) -> Result:
    return resources.port_free("PROMETHEUS_PORT", s.prometheus_bind, s.prometheus_port)
