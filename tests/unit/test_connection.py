"""Unit tests for navigator.http.connection: bytes into `HttpConnection` over the shared
in-memory transport (tests/fakes.py), assertions on the bytes written and on the connection's
state (closed, half-closed, its deadline), never on call lists.

Answers here are local (static files, 404s, error pages), so no backend is involved; the
proxied path is covered by test_protocol_flow.py and the integration tests.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from navigator.config.loader import load_config
from navigator.http.client import Deadline
from navigator.http.connection import _NEXT, HttpConnection, Phase
from navigator.http.state import ServerState
from navigator.proxy.upstream import UpstreamPool
from navigator.web.snapshot import build_snapshot
from tests.fakes import FixedTenants, MemoryTransport


class Rig:
    def __init__(self, tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
        public = tmp_path / "public"
        public.mkdir()
        (public / "a.txt").write_bytes(b"AAAA")
        (public / "b.txt").write_bytes(b"BB")
        cfg = tmp_path / "navigator.yml"
        cfg.write_text(f"server:\n  listen: 127.0.0.1:0\n  static:\n    public_dir: {public}\n")
        self.loop = loop
        self.state = ServerState(loop=loop, snapshot=build_snapshot(load_config(cfg)),
                                 pool=UpstreamPool(loop), tenants=FixedTenants(None))
        self.client = HttpConnection(self.state)
        self.transport = MemoryTransport()
        self.client.connection_made(self.transport)  # type: ignore[arg-type]

    def send(self, data: bytes) -> bytes:
        self.client.data_received(data)
        for _ in range(3):  # pipelined requests begin on a later loop turn
            self.loop.run_until_complete(asyncio.sleep(0))
        return self.transport.take()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    loop = asyncio.new_event_loop()
    try:
        yield Rig(tmp_path, loop)
    finally:
        loop.close()


def statuses(data: bytes) -> list[bytes]:
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", data)


def test_keep_alive_then_the_keepalive_deadline(rig: Rig) -> None:
    out = rig.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(out) == [b"200"]
    assert out.endswith(b"\r\n\r\nAAAA")
    assert not rig.transport.closed
    assert "deadline=keepalive" in rig.client.describe(rig.loop.time())


def test_pipelined_requests_are_answered_in_request_order(rig: Rig) -> None:
    out = rig.send(b"GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(out) == [b"200", b"404", b"200"]
    assert out.index(b"BB") < out.index(b"404 page not found") < out.index(b"AAAA")
    assert not rig.transport.paused


def test_a_framing_refusal_is_answered_then_closed(rig: Rig) -> None:
    out = rig.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\nabc")
    assert statuses(out) == [b"400"]
    assert rig.transport.closed
    assert rig.client.phase is Phase.CLOSED


def test_an_error_after_answered_requests_waits_for_them(rig: Rig) -> None:
    out = rig.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert statuses(out) == [b"200", b"400"]
    assert rig.transport.closed


def test_an_error_page_for_head_has_no_body(rig: Rig) -> None:
    out = rig.send(b"HEAD /missing HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(out) == [b"404"]
    assert out.endswith(b"\r\n\r\n")


def test_a_head_cut_short_gets_408_when_its_deadline_passes(rig: Rig) -> None:
    rig.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nUser-Ag")
    rig.client.expire(rig.loop.time())  # not yet due: nothing happens
    assert not rig.transport.closed
    rig.client.expire(rig.loop.time() + 3600)
    assert statuses(rig.transport.take()) == [b"408"]
    assert rig.transport.closed


def test_an_idle_connection_closes_silently_at_its_deadline(rig: Rig) -> None:
    rig.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    rig.client.expire(rig.loop.time() + 3600)
    assert rig.transport.take() == b""
    assert rig.transport.closed


def test_an_unwanted_body_is_lingered_on_not_reset(rig: Rig) -> None:
    out = rig.send(b"POST /missing HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
    assert statuses(out) == [b"404"]
    assert b"Connection: close" in out
    assert rig.transport.eof_written  # half-closed: the client still may send
    assert not rig.transport.closed
    assert "deadline=linger" in rig.client.describe(rig.loop.time())
    assert rig.client.phase is Phase.LINGER
    rig.send(b"x" * 5000)  # discarded
    assert rig.transport.take() == b""
    rig.client.eof_received()
    assert rig.transport.closed


def test_deadline_api_only_extends_its_own_kind(rig: Rig) -> None:
    client = rig.client
    client.arm_deadline(Deadline.WEBSOCKET, 10)
    first = client.deadline
    client.extend_deadline(Deadline.UPSTREAM, 1000)
    assert client.deadline == first
    client.extend_deadline(Deadline.WEBSOCKET, 1000)
    assert client.deadline > first
    client.clear_deadline()
    client.expire(rig.loop.time() + 5000)  # nothing armed: nothing expires
    assert not rig.transport.closed


def test_every_phase_can_close_and_closed_is_final() -> None:
    assert set(_NEXT) == set(Phase)
    assert _NEXT[Phase.CLOSED] == frozenset()
    assert all(Phase.CLOSED in exits for phase, exits in _NEXT.items() if phase is not Phase.CLOSED)


def test_a_closed_connection_stays_closed(rig: Rig) -> None:
    rig.client.close()
    rig.client.start_tunnel(rig.client)  # type: ignore[arg-type]  # not a transition from CLOSED
    assert rig.client.phase is Phase.CLOSED
    assert rig.client.closed


def test_request_ids_are_32_hex_digits_and_do_not_repeat_across_draws(rig: Rig) -> None:
    """Ids are drawn 64 at a time: 1,000 of them span many draws."""
    ids = [rig.state.new_request_id() for _ in range(1000)]
    assert all(re.fullmatch(rb"[0-9a-f]{32}", rid) for rid in ids)
    assert len(set(ids)) == len(ids)
