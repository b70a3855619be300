"""The `.internal` resolver and `reach` on real event loops against a loopback DNS server."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from navigator.proxy.resolver import (
    InternalResolver,
    Unreachable,
    backoff_delays,
    needs_lookup,
    reach,
)
from navigator.proxy.upstream import UpstreamPool
from tests.fixtures.apps.support import LOOPS, run, wait_for
from tests.integration.stamps_dns import TYPE_A, TYPE_AAAA, dns_responder

pytestmark = pytest.mark.timeout(60)

TABLE = {"v6.app.internal": ["::1", "127.0.0.1"], "v4.app.internal": ["127.0.0.1"],
         "two.app.internal": ["127.0.0.1", "127.0.0.2"]}


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", False), ("::1", False), ("localhost", False), ("fdaa:0:1::3", False),
    ("iad.app.internal", True), ("backend", True),
])
def test_needs_lookup(host: str, expected: bool) -> None:
    assert needs_lookup(host) is expected


def test_backoff_doubles_up_to_the_cap() -> None:
    assert backoff_delays(0) == ()
    assert backoff_delays(5, 0.1, 0.5) == (0.1, 0.2, 0.4, 0.5, 0.5)


@pytest.mark.parametrize("loop", LOOPS)
def test_aaaa_first_then_a_and_cached(loop: str) -> None:
    with dns_responder(TABLE) as dns:
        async def body() -> None:
            resolver = InternalResolver(asyncio.get_running_loop(), (dns.address,))
            try:
                assert await resolver.resolve("v6.app.internal") == ("::1",)
                assert await resolver.resolve("v4.app.internal") == ("127.0.0.1",)
                assert resolver.cached("v4.app.internal") == ("127.0.0.1",)
                assert await resolver.resolve("v4.app.internal") == ("127.0.0.1",)
            finally:
                await resolver.close()

        run(body, loop)
        assert dns.asked("v6.app.internal", TYPE_AAAA) == 1
        assert dns.asked("v6.app.internal", TYPE_A) == 0  # AAAA answered: no A question
        assert dns.asked("v4.app.internal", TYPE_AAAA) == 1
        assert dns.asked("v4.app.internal", TYPE_A) == 1  # asked once, then cached


def test_concurrent_lookups_share_one_query() -> None:
    with dns_responder(TABLE) as dns:
        async def body() -> None:
            resolver = InternalResolver(asyncio.get_running_loop(), (dns.address,))
            try:
                answers = await asyncio.gather(*(resolver.resolve("two.app.internal")
                                                 for _ in range(20)))
                assert set(answers) == {("127.0.0.1", "127.0.0.2")}
            finally:
                await resolver.close()

        run(body)
        assert dns.asked("two.app.internal", TYPE_A) == 1


def test_unknown_name_fails_and_is_remembered_briefly() -> None:
    with dns_responder(TABLE) as dns:
        async def body() -> None:
            resolver = InternalResolver(asyncio.get_running_loop(), (dns.address,))
            try:
                for _ in range(3):
                    with pytest.raises(Unreachable, match=r"nope\.app\.internal"):
                        await resolver.resolve("nope.app.internal")
                assert resolver.cached("nope.app.internal") is None
            finally:
                await resolver.close()

        run(body)
        assert dns.asked("nope.app.internal", TYPE_AAAA) == 1  # NXDOMAIN: A is not asked
        assert dns.asked("nope.app.internal", TYPE_A) == 0


def silent_udp_port() -> socket.socket:
    """A bound UDP socket nobody reads: queries to it are never answered."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_silent_dns_server_ends_in_unreachable_not_a_hang() -> None:
    with silent_udp_port() as silent:
        address = f"127.0.0.1:{silent.getsockname()[1]}"

        async def body() -> None:
            loop = asyncio.get_running_loop()
            resolver = InternalResolver(loop, (address,))
            pool = UpstreamPool(loop)
            try:
                with pytest.raises(Unreachable):
                    await reach(pool, resolver, "v4.app.internal", 80, retries=3, budget=1.5)
            finally:
                await resolver.close()

        run(body, timeout=20)


class Listener:
    """A TCP server that accepts and counts connections."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_reach_connects_to_the_resolved_address() -> None:
    with dns_responder(TABLE) as dns:
        async def body() -> None:
            loop = asyncio.get_running_loop()
            listener = Listener()
            server = await asyncio.start_server(listener.handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            resolver = InternalResolver(loop, (dns.address,))
            pool = UpstreamPool(loop)
            try:
                conn, key = await reach(pool, resolver, "v4.app.internal", port, retries=0,
                                        budget=5.0)
                assert key == ("127.0.0.1", port, False)
                await wait_for(lambda: listener.accepted == 1, message="the connection")
                conn.close()
            finally:
                server.close()
                await resolver.close()

        run(body)


@pytest.mark.parametrize(("retries", "questions"), [(0, 1), (2, 3)])
def test_refused_connection_retries_only_when_granted(retries: int, questions: int) -> None:
    """Each retry follows a fresh lookup (the cached address refused): count the questions.
    TTL 0 keeps c-ares' own query cache out of the count."""
    with dns_responder(TABLE, ttl=0) as dns:
        port = refused_port()

        async def body() -> None:
            loop = asyncio.get_running_loop()
            resolver = InternalResolver(loop, (dns.address,))
            pool = UpstreamPool(loop)
            try:
                with pytest.raises(Unreachable, match=re.escape(f"v4.app.internal:{port}")):
                    await reach(pool, resolver, "v4.app.internal", port, retries=retries,
                                budget=10.0)
            finally:
                await resolver.close()

        run(body)
        assert dns.asked("v4.app.internal", TYPE_A) == questions
