"""The optional internal metrics listener (`server.metrics.listen`).

Room: I/O. A separate socket that answers only the metrics path, to any peer that can reach
it: the operator binds it where scrapers live (Fly's `[metrics]` section scrapes port 9091
over the private network). It shares nothing with the public listener but the `Metrics`
object, so a slow scraper never touches request handling.

Invariants: keep-alive and pipelined scrapes are answered in order; a malformed request or
an over-long request line gets a 4xx and the connection closed; request bodies are ignored.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

from navigator.http import wire
from navigator.ops.metrics import CONTENT_TYPE, Metrics

MAX_TARGET_BYTES = 8192


class MetricsProtocol(asyncio.Protocol):
    """One scraper connection."""

    __slots__ = ("_metrics", "_parser", "_path", "_target", "_transport")

    def __init__(self, metrics: Metrics, path: str) -> None:
        self._metrics = metrics
        self._path = path.encode("latin-1")
        self._parser = httptools.HttpRequestParser(self)
        self._target = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._answer(400, b"", keep_alive=False, head_only=False)
        except httptools.HttpParserError:
            if self._transport is not None and not self._transport.is_closing():
                self._answer(400, b"", keep_alive=False, head_only=False)

    def on_message_begin(self) -> None:
        self._target = b""

    def on_url(self, url: bytes) -> None:
        self._target += url
        if len(self._target) > MAX_TARGET_BYTES:
            self._answer(414, b"", keep_alive=False, head_only=False)
            raise httptools.HttpParserError("request target too long")

    def on_message_complete(self) -> None:
        parser = self._parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        path = self._target.partition(b"?")[0]
        if path != self._path:
            self._answer(404, b"", keep_alive=keep_alive, head_only=method == b"HEAD")
        elif method not in (b"GET", b"HEAD"):
            self._answer(405, b"", keep_alive=keep_alive, head_only=False)
        else:
            self._answer(200, self._metrics.render(), keep_alive=keep_alive,
                         head_only=method == b"HEAD")

    def _answer(self, status: int, body: bytes, *, keep_alive: bool, head_only: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if status == 200:
            data = wire.response(200, body, (("Content-Type", CONTENT_TYPE),),
                                 keep_alive=keep_alive, head_only=head_only, content_type=None)
        else:
            data = wire.error_response(status, keep_alive=keep_alive)
        transport.write(data)
        if not keep_alive:
            transport.close()


async def start_metrics_listener(loop: asyncio.AbstractEventLoop, metrics: Metrics,
                                 host: str, port: int, path: str) -> asyncio.Server:
    """Listen on host:port ("" = all interfaces) for scrapes of `path`."""
    return await loop.create_server(lambda: MetricsProtocol(metrics, path), host or None, port,
                                    reuse_address=True)
