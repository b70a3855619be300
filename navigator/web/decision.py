"""What routing decides, and the request facts it decides on.

Room: PURE data shared by `routing` (which returns a Decision) and `web.handlers` (which acts
on it). Nothing here does I/O. A Decision is either a complete response built by pure code
(`Respond`), a file to stream (`ServeFile`), or a place to relay the request to
(`ProxyTenant`, `ProxyExternal`), a replay answer to give once its destination machine runs
(`ReplayWhenUp`), plus the few special endpoints that own the connection.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from navigator.config.runtime import CgiScript, Pairs, ReverseProxyRoute, Tenant, UpstreamTarget


# The classes built per request have their `__init__` written out: mypyc compiles that to a
# direct native constructor, while a dataclass-generated one runs as interpreted code behind
# an args tuple and kwargs dict (~2 µs per decision in the compiled build, more than the whole
# routing step). `dataclass(init=False)` still writes eq, hash and repr; `Final` keeps the
# decisions immutable for mypy (and read-only attributes in the compiled build).
@dataclass(init=False, slots=True)
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
    authorization: str | None
    user_agent: str
    content_length: int | None
    chunked: bool
    websocket: bool  # Upgrade: websocket requested
    fly_replay_failed: bool
    navigator_retry: bool  # X-Navigator-Retry: true
    accept_encoding: str
    forwarded_proto: str  # incoming X-Forwarded-Proto, only with server.trust_proxy
    client_ip: str  # from forwarding headers, only with trust_proxy ("" = the peer)
    if_modified_since: str
    if_none_match: str
    range: str
    remote_user: str  # set by routing after a successful Basic auth
    rewritten_path: str  # set by routing when a rewrite changed the path (access log)

    def __init__(self, method: str, path: str, query: str, host: str, peer_ip: str,
                 authorization: str | None = None, user_agent: str = "",
                 content_length: int | None = None, chunked: bool = False,
                 websocket: bool = False, fly_replay_failed: bool = False,
                 navigator_retry: bool = False, accept_encoding: str = "",
                 forwarded_proto: str = "", client_ip: str = "", if_modified_since: str = "",
                 if_none_match: str = "", range: str = "", remote_user: str = "",
                 rewritten_path: str = "") -> None:
        self.method = method
        self.path = path
        self.query = query
        self.host = host
        self.peer_ip = peer_ip
        self.authorization = authorization
        self.user_agent = user_agent
        self.content_length = content_length
        self.chunked = chunked
        self.websocket = websocket
        self.fly_replay_failed = fly_replay_failed
        self.navigator_retry = navigator_retry
        self.accept_encoding = accept_encoding
        self.forwarded_proto = forwarded_proto
        self.client_ip = client_ip
        self.if_modified_since = if_modified_since
        self.if_none_match = if_none_match
        self.range = range
        self.remote_user = remote_user
        self.rewritten_path = rewritten_path


@dataclass(init=False, slots=True, unsafe_hash=True)
class Respond:
    """A complete answer built by pure code (redirect, 401, 404, replay JSON, health...)."""

    status: Final[int]
    headers: Final[Pairs]
    body: Final[bytes]
    response_type: Final[str]  # access-log `response_type`

    def __init__(self, status: int, headers: Pairs, body: bytes, response_type: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.response_type = response_type


class ServeFile:
    """A regular file inside the public dir to answer with. Equal when the same file would be
    served the same way: `stat` (what routing's lookup learned, so serving need not stat
    again) does not count."""

    __slots__ = ("file", "headers", "response_type", "stat")

    def __init__(self, file: str, headers: Pairs, response_type: str = "static",
                 stat: os.stat_result | None = None) -> None:
        self.file: Final = file  # resolved, checked to lie inside the public dir
        self.headers: Final = headers  # extra headers such as Cache-Control
        self.response_type: Final = response_type
        self.stat: Final = stat

    def _key(self) -> tuple[str, Pairs, str]:
        return (self.file, self.headers, self.response_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServeFile) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"ServeFile({self.file!r}, {self.headers!r}, {self.response_type!r})"


@dataclass(init=False, slots=True, unsafe_hash=True)
class ProxyTenant:
    tenant: Final[Tenant]
    path: Final[str]  # upstream request-target: (rewritten) path + "?query"
    set_headers: Final[Pairs]  # a helper's route `headers` (replace same-named ones)
    response_headers: Final[Pairs]  # a helper's route `response_headers`

    def __init__(self, tenant: Tenant, path: str, set_headers: Pairs = (),
                 response_headers: Pairs = ()) -> None:
        self.tenant = tenant
        self.path = path
        self.set_headers = set_headers
        self.response_headers = response_headers


@dataclass(frozen=True, slots=True)
class Destination:
    """A replay's destination machine, as `proxy.wake` checks and starts it."""

    app: str
    machine: str  # Fly machine id
    dns_name: str  # `<machine>.vm.<app>.internal`: resolves only while it runs
    port: int  # where navigator listens there (the same config everywhere)
    forced: bool  # `instance` (True) or `prefer_instance` (False: Fly may pick another)


@dataclass(init=False, slots=True, unsafe_hash=True)
class ProxyExternal:
    """Relay to a fixed upstream: a reverse-proxy route or another machine (stamps)."""

    target: Final[UpstreamTarget]
    path: Final[str]  # upstream request-target
    set_headers: Final[Pairs]  # replace same-named request headers
    response_headers: Final[Pairs]  # set on the response
    route: Final[ReverseProxyRoute | None]
    response_type: Final[str]
    idempotent_retries: Final[int]
    destination: Final[Destination | None]  # another machine to start first if stopped

    def __init__(self, target: UpstreamTarget, path: str, set_headers: Pairs,
                 response_headers: Pairs, route: ReverseProxyRoute | None = None,
                 response_type: str = "proxy", idempotent_retries: int = 0,
                 destination: Destination | None = None) -> None:
        self.target = target
        self.path = path
        self.set_headers = set_headers
        self.response_headers = response_headers
        self.route = route
        self.response_type = response_type
        self.idempotent_retries = idempotent_retries
        self.destination = destination


@dataclass(frozen=True, slots=True)
class ReplayWhenUp:
    """Answer with the replay once `destination` runs (started if need be)."""

    answer: Respond
    destination: Destination


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
            | CableBroadcast | ServeMetrics | ReplayWhenUp | ServeStatusPage)
