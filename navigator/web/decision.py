"""What routing decides, and the request facts it decides on.

Room: PURE data shared by `routing` (which returns a Decision) and `web.handlers` (which acts
on it). Nothing here does I/O. A Decision is either a complete response built by pure code
(`Respond`), a file to stream (`ServeFile`), or a place to relay the request to
(`ProxyTenant`, `ProxyExternal`), plus the few special endpoints that own the connection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from navigator.config.runtime import CgiScript, Pairs, ReverseProxyRoute, Tenant, UpstreamTarget


@dataclass(slots=True)
class RequestInfo:
    """The facts about one request that decisions need, filled by the protocol.

    `path` is the request-target's path as received (still percent-encoded, already checked
    by `wire.request_target`); routing normalises it once (`routing.normalize_path`) and
    decides on that (the full rule is in `routing`'s module docstring).
    """

    method: str
    path: str
    query: str  # without "?"; "" when absent
    host: str
    peer_ip: str
    authorization: str | None = None
    user_agent: str = ""
    content_length: int | None = None
    chunked: bool = False
    websocket: bool = False  # Upgrade: websocket requested
    fly_replay_failed: bool = False
    navigator_retry: bool = False  # X-Navigator-Retry: true
    accept_encoding: str = ""
    forwarded_proto: str = ""  # incoming X-Forwarded-Proto, only with server.trust_proxy
    client_ip: str = ""  # from forwarding headers, only with trust_proxy ("" = the peer)
    if_modified_since: str = ""
    if_none_match: str = ""
    range: str = ""
    remote_user: str = ""  # set by routing after a successful Basic auth
    rewritten_path: str = ""  # set by routing when a rewrite changed the path (access log)


@dataclass(frozen=True, slots=True)
class Respond:
    """A complete answer built by pure code (redirect, 401, 404, replay JSON, health...)."""

    status: int
    headers: Pairs
    body: bytes
    response_type: str  # access-log `response_type`


@dataclass(frozen=True, slots=True)
class ServeFile:
    file: Path  # resolved, checked to lie inside the public dir
    headers: Pairs  # extra headers such as Cache-Control
    response_type: str = "static"
    # What routing's lookup already learned, so serving need not stat again (not compared).
    stat: os.stat_result | None = field(default=None, compare=False)
    file_text: str = field(default="", compare=False)  # str(file), for cache keys


@dataclass(frozen=True, slots=True)
class ProxyTenant:
    tenant: Tenant
    path: str  # upstream request-target: (rewritten) path + "?query"
    set_headers: Pairs = ()  # a helper's route `headers` (replace same-named ones)
    response_headers: Pairs = ()  # a helper's route `response_headers`


@dataclass(frozen=True, slots=True)
class ProxyExternal:
    """Relay to a fixed upstream: a reverse-proxy route or another machine (stamps)."""

    target: UpstreamTarget
    path: str  # upstream request-target
    set_headers: Pairs  # replace same-named request headers
    response_headers: Pairs  # set on the response
    route: ReverseProxyRoute | None = None
    response_type: str = "proxy"
    idempotent_retries: int = 0


@dataclass(frozen=True, slots=True)
class RunCgi:
    script: CgiScript
    path: str


@dataclass(frozen=True, slots=True)
class CableSocket:
    """Upgrade to the built-in pub/sub websocket."""


@dataclass(frozen=True, slots=True)
class CableBroadcast:
    """POST to the loopback-only broadcast endpoint (body is read by the handler)."""


@dataclass(frozen=True, slots=True)
class ServeMetrics:
    """The Prometheus text endpoint (loopback peers only; others fall through)."""


@dataclass(frozen=True, slots=True)
class ServeStatusPage:
    """The HTML status page (`server.status_page`); auth was checked by routing."""


Decision = (Respond | ServeFile | ProxyTenant | ProxyExternal | RunCgi | CableSocket
            | CableBroadcast | ServeMetrics | ServeStatusPage)
