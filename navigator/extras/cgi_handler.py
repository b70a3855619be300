"""CGI scripts on a client connection: streaming the request body into the script with
backpressure and writing its response.

Room: I/O glue. `extras.cgi` owns the script's process and its CGI/1.1 parsing; this module
adapts a client exchange to it (a bounded stdin queue, a drain waiter, chunked re-framing).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

from navigator.extras.cgi import build_cgi_env, check_cgi_access, run_cgi
from navigator.http import wire
from navigator.http.client import Client
from navigator.http.exchange import BaseHandler, Exchange
from navigator.http.failure import Failure
from navigator.http.flow import PAUSE_BUFFER
from navigator.web.decision import RunCgi

log = logging.getLogger("navigator.extras")

CGI_QUEUE_CHUNKS = 16


class _CgiBody(BaseHandler):
    """Handler feeding the request body to the script's stdin through a bounded queue; it
    also owns the script's task and the drain waiter of the response side."""

    __slots__ = ("client", "drain", "ex", "queue", "task")

    def __init__(self, client: Client, ex: Exchange) -> None:
        self.client = client
        self.ex = ex
        self.task: asyncio.Task[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for chunk in client.take_buffered_body(ex):
            self.queue.put_nowait(chunk)
        if ex.request_complete:
            self.queue.put_nowait(None)

    def request_body(self, data: bytes) -> None:
        self.queue.put_nowait(bytes(data))
        if self.queue.qsize() > CGI_QUEUE_CHUNKS:
            self.client.pause_reading(PAUSE_BUFFER)

    def request_end(self) -> None:
        self.queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.queue.get()
            if self.queue.qsize() <= CGI_QUEUE_CHUNKS // 2:
                self.client.resume_reading(PAUSE_BUFFER)
            if chunk is None:
                return
            yield chunk

    async def wait_writable(self) -> None:
        if self.client.write_paused and not self.client.closed:
            self.drain = self.client.state.loop.create_future()
            await self.drain

    def client_resumed(self) -> None:
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)

    def client_lost(self) -> None:
        if self.task is not None:
            self.task.cancel()  # run_cgi kills the script's process group


class _CgiSink:
    """Writes the script's response to the client, chunked unless it gave a length."""

    def __init__(self, client: Client, ex: Exchange, body: _CgiBody) -> None:
        self.client = client
        self.ex = ex
        self.body_handler = body
        self.chunked = False

    async def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        ex = self.ex
        ex.status = status
        ex.head_sent = True
        lines = [wire.status_line(status)]
        has_length = False
        for name, value in headers:
            lname = name.lower()
            if lname.encode() in wire.HOP_BY_HOP:
                continue
            has_length = has_length or lname == "content-length"
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not has_length and ex.method != b"HEAD" and status not in (204, 304):
            if ex.http_minor >= 1:
                lines.append(b"Transfer-Encoding: chunked\r\n")
                self.chunked = True
            else:
                ex.keep_alive = False
        if not ex.keep_alive:
            lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        self.client.writelines(lines)

    async def body(self, chunk: bytes) -> None:
        if not chunk or self.ex.method == b"HEAD":
            return
        self.ex.bytes_sent += len(chunk)
        self.client.write(wire.encode_chunk(chunk) if self.chunked else chunk)
        await self.body_handler.wait_writable()

    async def end(self) -> None:
        """Called once by run_cgi after the last body chunk."""
        if self.chunked:
            self.client.write(wire.LAST_CHUNK)


def start_cgi(client: Client, ex: Exchange, decision: RunCgi) -> None:
    assert ex.info is not None
    ex.response_type = "cgi"
    denied = check_cgi_access(decision.script, ex.info.remote_user or None)
    if denied is not None:
        headers = [("WWW-Authenticate", 'Basic realm="Restricted"')] if denied == 401 else []
        text = b"Unauthorized" if denied == 401 else b"Forbidden"
        keep = ex.keep_alive and ex.request_complete
        client.respond_bytes(ex, denied, wire.response(denied, text, headers, keep_alive=keep),
                             len(text), "cgi")
        return
    env = build_cgi_env(decision.script, ex.info, ex.headers, client.state.listen_port,
                        dict(os.environ))
    body = _CgiBody(client, ex)
    ex.handler = body
    body.task = client.state.spawn(_run(client, ex, decision, env, body))


async def _run(client: Client, ex: Exchange, decision: RunCgi, env: dict[str, str],
               body: _CgiBody) -> None:
    sink = _CgiSink(client, ex, body)
    try:
        outcome = await run_cgi(decision.script, env, body.chunks(), sink)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("CGI %s failed: %s", decision.script.script, exc)
        client.fail(ex, Failure.BAD_RESPONSE, f"cgi failed: {exc}")
        return
    ex.handler = None
    if not outcome.completed:  # killed after the head went out: the body is cut short
        ex.keep_alive = False
    client.finish(ex)
    if outcome.reload and client.state.on_reload_request is not None:
        client.state.on_reload_request(decision.script.reload_config)
