"""Turns a finished exchange into an access-log line and metric samples.

Room: glue between the protocol (which only records raw facts on the Exchange) and the
ops rooms (`accesslog`, `metrics`). Runs once per request, so it copies references and
decodes a few byte strings, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from time import time as wall_clock
from typing import TYPE_CHECKING, Final

from navigator.http.state import RequestObserver
from navigator.ops.accesslog import AccessLogger, AccessRecord
from navigator.ops.metrics import Metrics
from navigator.tenants.idle import MachineIdle, Phase

if TYPE_CHECKING:
    from navigator.http.exchange import Exchange

# The machine counts as idle from the idle hooks on until a request starts it resuming.
IDLE_PHASES = frozenset({Phase.IDLE_HOOKS, Phase.ACTING, Phase.SUSPENDED})


def feed_server_gauges(metrics: Metrics, tenant_rows: Callable[[], list[dict[str, object]]],
                       connections: Sized, idle: MachineIdle) -> None:
    """Point the state gauges at their sources; they are read only when scraped, so the
    request path never updates them. `tenant_rows` is `Supervisor.status`."""
    metrics.set_tenant_rows(tenant_rows)
    metrics.open_connections.set_function(lambda: len(connections))
    metrics.open_websockets.set_function(lambda: idle.websockets)
    metrics.machine_idle.set_function(lambda: idle.phase in IDLE_PHASES)

_PROTOCOLS: Final = {0: "HTTP/1.0", 1: "HTTP/1.1"}


class RequestRecorder(RequestObserver):
    """The server's RequestObserver: access log plus per-tenant request metrics."""

    __slots__ = ("access", "logging", "metrics", "trust_proxy")

    def __init__(self, access: AccessLogger, metrics: Metrics, trust_proxy: bool) -> None:
        self.access = access
        self.logging = access.enabled  # fixed for the logger's life; read once, not per request
        self.metrics = metrics
        self.trust_proxy = trust_proxy

    def request_done(self, ex: Exchange) -> None:
        duration = wall_clock() - ex.started
        tenant = ex.tenant.name if ex.tenant is not None else ""
        self.metrics.request_done(tenant, ex.status, duration)
        if not self.logging:
            return
        info = ex.info
        x = ex.kept
        if info is not None:
            path = info.rewritten_path or info.path
            uri = f"{path}?{info.query}" if info.query else path
            client_ip = info.client_ip or info.peer_ip  # headers count only with trust_proxy
            remote_user = info.remote_user or x.get(b"x-remote-user", b"").decode("latin-1")
            method = info.method
            user_agent = info.user_agent
        else:  # the request never got past its head
            uri = ex.target.decode("latin-1")
            client_ip = remote_user = user_agent = ""
            method = ex.method.decode("latin-1")
        request_id = ex.request_id or x.get(b"x-amzn-trace-id", b"")
        self.access.log(AccessRecord(
            ex.started, client_ip, remote_user, method, uri,
            _PROTOCOLS.get(ex.http_minor, "HTTP/1.1"), ex.status, ex.bytes_sent,
            request_id.decode("latin-1"), duration, x.get(b"referer", b"").decode("latin-1"),
            user_agent, x.get(b"fly-request-id", b"").decode("latin-1"), tenant,
            ex.response_type, ex.destination, f"tenant:{tenant}" if tenant else "",
            ex.file_path, ex.error))
