"""The floor of navigator's design: the least a uvloop + httptools proxy can do per request.

`python benchmarks/floor.py LISTEN_PORT BACKEND_PORT` relays keep-alive HTTP/1.1 requests
without bodies to one backend: parse the request head with httptools, write a rebuilt head
(method, target, the client's headers, one X-Forwarded-For) to a pooled backend connection,
parse the response head with httptools, write it and the Content-Length body back. No
routing, limits, deadlines, hop-by-hop filtering, logging or metrics: not a server, a
measuring stick. `make bench --proxies ...,floor` runs it beside nginx and navigator, so
"navigator ÷ floor" says what navigator's own work costs on the machine of that run, and
"floor ÷ nginx" what the design card itself costs (Python and two callbacks per packet).
"""

from __future__ import annotations

import asyncio
import sys

import httptools
import uvloop


class Backend(asyncio.Protocol):
    """One pooled backend connection; answers go to `client` until its message completes.
    As in navigator: the head goes through the parser, a Content-Length body that goes on
    past the packet is relayed as it comes (no parser copy)."""

    def __init__(self, pool: list[Backend]) -> None:
        self.pool = pool
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.out: list[bytes] = []
        self.left = 0  # Content-Length bytes still to relay
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.left:
            self._raw(data)
        else:
            end = data.find(b"\r\n\r\n") + 4
            if 3 < end < len(data):
                self.parser.feed_data(data[:end])
                if self.left and self.left > len(data) - end:
                    self.parser = httptools.HttpResponseParser(self)  # it waits for a body
                    self._raw(data[end:])
                else:
                    self.left = 0
                    self.parser.feed_data(data[end:])
            else:
                self.parser.feed_data(data)
        client = self.client
        if self.out and client is not None and client.transport is not None:
            client.transport.write(b"".join(self.out))
            self.out = []

    def _raw(self, data: bytes) -> None:
        self.out.append(data)
        self.left -= len(data)
        if self.left <= 0:
            self.left = 0
            self.on_message_complete()

    def on_message_begin(self) -> None:
        self.out.append(b"")  # the status line, known at the end of the head

    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-length":
            self.left = int(value)
        elif lname == b"connection":
            return  # hop-by-hop: the client's connection is ours to describe
        self.out += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        self.out[0] = b"HTTP/1.1 %d \r\n" % self.parser.get_status_code()
        client = self.client
        self.out.append(b"\r\n" if client is None or client.keep_alive
                        else b"Connection: close\r\n\r\n")
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.out.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.transport is not None:
            client.transport.write(b"".join(self.out))
            if not client.keep_alive:
                client.transport.close()
        self.out = []
        if self.keep_alive:
            self.pool.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)


class Client(asyncio.Protocol):
    """One client connection: parse a request head, send it on over a pooled connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int, pool: list[Backend]) -> None:
        self.loop, self.port, self.pool = loop, port, pool
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.parts: list[bytes] = []
        self.url = b""
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.parts += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        head = b"".join([self.parser.get_method(), b" ", self.url, b" HTTP/1.1\r\n",
                         *self.parts, b"X-Forwarded-For: 127.0.0.1\r\n\r\n"])
        self.parts, self.url = [], b""
        self.keep_alive = self.parser.should_keep_alive()
        if self.pool:
            self._send(self.pool.pop(), head)
        else:
            self.loop.create_task(self._connect(head))

    async def _connect(self, head: bytes) -> None:
        _, backend = await self.loop.create_connection(
            lambda: Backend(self.pool), "127.0.0.1", self.port)
        self._send(backend, head)

    def _send(self, backend: Backend, head: bytes) -> None:
        backend.client = self
        if backend.transport is not None:
            backend.transport.write(head)


def main() -> None:
    listen, backend = int(sys.argv[1]), int(sys.argv[2])
    loop = uvloop.new_event_loop()
    pool: list[Backend] = []
    loop.run_until_complete(loop.create_server(
        lambda: Client(loop, backend, pool), "127.0.0.1", listen, backlog=4096))
    loop.run_forever()


if __name__ == "__main__":
    main()
