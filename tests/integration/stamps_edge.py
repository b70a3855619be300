"""A test edge proxy that honours fly-replay the way Fly's proxy does, on loopback.

Each machine gets its own entry port (a client "lands" on that machine, as Fly would route it
to the nearest one). The edge forwards the request to the machine with `Fly-Client-IP` and
`Fly-Request-Id`; when the answer is a replay (`application/vnd.fly.replay+json`) it:
- refuses when the request body is 1 MiB or more (Fly cannot replay those: a navigator that
  answers with a replay there is wrong, and the client sees a 502 from the edge);
- picks the target: `instance` (a machine id of this app), `prefer_instance` (that machine
  first, then every other machine of the app, the source included, as Fly falls back to any
  machine) or `region` (a machine there);
- drops Authorization on a same-app replay (observed on Fly), applies
  `transform.set_headers`, adds `fly-replay-src: instance=…;region=…;t=…`;
- on no candidate, a refused connection or no answer within `timeout` (capped by the edge's
  own `replay_timeout`), with `fallback: force_self`, sends the request back to the source
  machine with `fly-replay-failed`; a fallback request may not replay again;
- follows chains of replays, but at most `max_hops`: more is reported as a 508 (a loop).

Bodies are buffered whole (it is a test tool); chunked request bodies are re-sent chunked.
The path each request took is kept in `journeys` and returned in `X-Edge-Path`; `events`
holds (time.monotonic(), what, machine) for arrivals, replays and answers (test timelines).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

REPLAY_TYPE = "application/vnd.fly.replay+json"
REPLAY_LIMIT = 1_048_576
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te",
               "upgrade", "proxy-connection"}


@dataclass(frozen=True)
class Machine:
    id: str
    region: str
    host: str
    port: int


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool

    def with_headers(self, drop: set[str], add: list[tuple[str, str]]) -> Request:
        names = drop | {name.lower() for name, _ in add}
        kept = [(n, v) for n, v in self.headers if n.lower() not in names]
        return Request(self.method, self.target, kept + add, self.body, self.chunked)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1"]
        lines += [f"{n}: {v}" for n, v in self.headers if n.lower() not in _HOP_BY_HOP]
        if self.chunked:
            lines.append("Transfer-Encoding: chunked")
            body = (b"%x\r\n%s\r\n" % (len(self.body), self.body) if self.body else b"") \
                + b"0\r\n\r\n"
        else:
            if self.body or self.method in ("POST", "PUT", "PATCH"):
                lines.append(f"Content-Length: {len(self.body)}")
            body = self.body
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return ""


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]],
                     to_close: bool) -> tuple[bytes, bool]:
    values = {n.lower(): v for n, v in headers}
    if "chunked" in values.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts), True
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if "content-length" in values:
        return await reader.readexactly(int(values["content-length"])), False
    return (await reader.read() if to_close else b""), False


@dataclass
class Edge:
    machines: list[Machine]
    app: str
    replay_timeout: float = 3.0
    max_hops: int = 6
    ports: dict[str, int] = field(default_factory=dict)
    journeys: list[list[str]] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def machine(self, machine_id: str) -> Machine:
        return next(m for m in self.machines if m.id == machine_id)

    async def _send(self, machine: Machine, request: Request) -> Answer:
        """One request to one machine on a fresh connection (bound by the caller's timeout)."""
        reader, writer = await asyncio.open_connection(machine.host, machine.port)
        try:
            writer.write(request.encode())
            await writer.drain()
            status_line, headers = await _read_head(reader)
            _, status, *reason = status_line.split(" ", 2)
            code = int(status)
            body = b"" if request.method == "HEAD" or code in (204, 304) else \
                (await _read_body(reader, headers, True))[0]
            return Answer(code, reason[0] if reason else "", headers, body)
        finally:
            writer.close()

    async def route(self, entry: Machine, request: Request, client_ip: str) -> Answer:
        """What the client gets for `request` landing on `entry`."""
        request = request.with_headers(set(), [
            ("Fly-Client-IP", client_ip), ("Fly-Request-Id", f"edge-{next(self._ids)}"),
            ("Fly-Region", entry.region)])
        journey = [entry.id]
        self.journeys.append(journey)
        self.events.append((time.monotonic(), "arrived", entry.id))
        answer = await asyncio.wait_for(self._send(entry, request), 30.0)
        source = entry
        while answer.header("content-type").startswith(REPLAY_TYPE):
            if len(request.body) >= REPLAY_LIMIT:
                return _error(502, "edge: cannot replay a body of 1 MiB or more")
            if len(journey) >= self.max_hops:
                return _error(508, "edge: replay loop")
            spec = json.loads(answer.body)
            candidates = self._candidates(spec)
            replayed = request.with_headers(
                {"authorization"} if spec.get("app", self.app) == self.app else set(),
                [*((h["name"], h["value"])
                   for h in spec.get("transform", {}).get("set_headers", [])),
                 ("fly-replay-src", f"instance={source.id};region={source.region};"
                                    f"t={int(time.time() * 1e6)}")])
            timeout = min(self.replay_timeout, _seconds(spec.get("timeout", "")) or 30.0)
            answer_or_none: Answer | None = None
            self.events.append((time.monotonic(), "replay answer", source.id))
            for target in candidates:
                try:
                    answer_or_none = await asyncio.wait_for(self._send(target, replayed), timeout)
                except (OSError, TimeoutError):
                    journey.append(f"{target.id}!")
                    continue
                journey.append(target.id)
                source, request = target, replayed
                break
            if answer_or_none is not None:
                answer = answer_or_none
                continue
            if spec.get("fallback") != "force_self":
                return _error(502, "edge: replay target unavailable")
            back = request.with_headers(set(), [
                ("fly-replay-failed", "reason=no_candidate" if not candidates
                 else "reason=timeout")])
            journey.append(f"{source.id}(fallback)")
            answer = await asyncio.wait_for(self._send(source, back), 30.0)
            if answer.header("content-type").startswith(REPLAY_TYPE):
                return _error(502, "edge: a fallback request cannot replay again")
            break
        self.events.append((time.monotonic(), f"answered {answer.status}", source.id))
        answer.headers.append(("X-Edge-Path", ">".join(journey)))
        return answer

    def _candidates(self, spec: dict[str, object]) -> list[Machine]:
        if "instance" in spec:
            if spec.get("app", self.app) != self.app:
                return []
            return [m for m in self.machines if m.id == spec["instance"]]
        if "prefer_instance" in spec:
            if spec.get("app", self.app) != self.app:
                return []
            preferred = spec["prefer_instance"]
            return sorted(self.machines, key=lambda m: m.id != preferred)
        if "region" in spec:
            return [m for m in self.machines if m.region == spec["region"]]
        return []

    async def _client(self, entry: Machine, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            request_line, headers = await _read_head(reader)
            method, target, _ = request_line.split(" ", 2)
            body, chunked = await _read_body(reader, headers, False)
            peer = writer.get_extra_info("peername")
            answer = await self.route(entry, Request(method, target, headers, body, chunked),
                                      peer[0] if peer else "")
            out = [f"HTTP/1.1 {answer.status} {answer.reason}"]
            out += [f"{n}: {v}" for n, v in answer.headers if n.lower() not in _HOP_BY_HOP]
            out += [f"Content-Length: {len(answer.body)}", "Connection: close"]
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
                         + (b"" if method == "HEAD" else answer.body))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    async def serve(self, ready: threading.Event, stop: asyncio.Event) -> None:
        servers = []
        for machine in self.machines:
            server = await asyncio.start_server(
                lambda r, w, m=machine: self._client(m, r, w), "127.0.0.1", 0)
            self.ports[machine.id] = server.sockets[0].getsockname()[1]
            servers.append(server)
        ready.set()
        await stop.wait()
        for server in servers:
            server.close()


def _error(status: int, text: str) -> Answer:
    return Answer(status, "Edge Error", [("Content-Type", "text/plain")], text.encode())


def _seconds(text: object) -> float:
    if isinstance(text, str) and text.endswith("s") and text[:-1].isdigit():
        return float(text[:-1])
    return 0.0


@contextmanager
def running_edge(machines: list[Machine], app: str, **options: float) -> Iterator[Edge]:
    """The edge on its own event loop thread, one entry port per machine."""
    edge = Edge(machines, app, **options)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(edge.serve(ready, stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise AssertionError("edge did not start")
    try:
        yield edge
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
