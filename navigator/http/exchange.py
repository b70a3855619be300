"""One request/response on a client connection, and the handler that produces its response.

Room: plain data shared by the connection (which fills it while reading), the handlers (which
answer it) and the access log (which reads it when it ends). No I/O. Declared below every
room that uses it, so none of them needs to import the connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from mypy_extensions import mypyc_attr

if TYPE_CHECKING:
    from navigator.config.runtime import Tenant
    from navigator.web.decision import RequestInfo
    from navigator.web.snapshot import Snapshot


class TenantLease(Protocol):
    """A request's slot on one tenant process (the supervisor's `TenantRecord`): released
    exactly once, when the exchange ends or, for a websocket, when its tunnel closes."""

    @property
    def port(self) -> int | None: ...
    def release(self) -> None: ...
    def tunnel_opened(self) -> None: ...
    def tunnel_closed(self) -> None: ...


class Handler(Protocol):
    """Something producing the response of the current exchange; the connection tells it
    about request body bytes, the end of the request, and the client's write buffer filling,
    draining or the client going away."""

    def request_body(self, data: bytes) -> None: ...
    def request_end(self) -> None: ...
    def client_paused(self) -> None: ...
    def client_resumed(self) -> None: ...
    def client_lost(self) -> None: ...


@mypyc_attr(allow_interpreted_subclasses=True)  # the CGI and cable handlers stay Python
class BaseHandler:
    """A request handler that ignores every event; subclasses override what they need."""

    __slots__ = ()

    def request_body(self, data: bytes) -> None:
        """Body bytes of the current request arrived."""

    def request_end(self) -> None:
        """The current request is complete."""

    def client_paused(self) -> None:
        """The client's write buffer is above its high-water mark."""

    def client_resumed(self) -> None:
        """The client's write buffer drained."""

    def client_lost(self) -> None:
        """The client went away or the exchange was abandoned."""


NO_TOKENS: Final[frozenset[bytes]] = frozenset()
"""The Connection tokens of a request that sent none (one object: `frozenset()` allocates)."""


class Exchange:
    """One request/response on a client connection, plus what the access log needs.

    `snapshot` is read once, when the request's first byte is parsed: every later step of this
    request (routing, handlers, proxy, error pages) uses it, so a reload never changes a
    request half-way.
    """

    __slots__ = (
        "activity_counted",
        "body_buffer",
        "body_buffered",
        "bytes_sent",
        "chunked",
        "conn_tokens",
        "content_length",
        "destination",
        "error",
        "expect_continue",
        "file_path",
        "handler",
        "head_sent",
        "headers",
        "http_minor",
        "info",
        "keep_alive",
        "kept",
        "lease",
        "method",
        "request_complete",
        "request_id",
        "response_type",
        "snapshot",
        "started",
        "status",
        "target",
        "tenant",
        "upgrade",
    )

    def __init__(self, started: float, snapshot: Snapshot) -> None:
        self.started = started
        self.snapshot = snapshot
        self.method = b""
        self.target = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_minor = 1
        self.keep_alive = True
        self.info: RequestInfo | None = None
        self.request_complete = False
        self.body_buffer: list[bytes] | None = None
        self.body_buffered = 0
        self.handler: Handler | None = None
        self.expect_continue = False
        self.content_length: int | None = None
        self.chunked = False
        self.conn_tokens = NO_TOKENS
        self.upgrade = False
        self.activity_counted = False  # told the machine-idle tracker it started
        self.lease: TenantLease | None = None  # a slot on a tenant process, until released
        self.head_sent = False
        self.status = 0
        self.bytes_sent = 0
        self.response_type = ""
        self.tenant: Tenant | None = None
        self.destination = ""
        self.file_path = ""  # a static file served (access log)
        self.error = ""
        self.request_id = b""
        # Raw values of the request headers that routing, the proxy and the log reuse, by
        # lower-case name (the reader's list of kept names); the full list is `headers`.
        self.kept: dict[bytes, bytes] = {}
