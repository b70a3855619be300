"""Readiness counts only the tenant's own answer: a port another program took between
navigator's bind probe and the tenant's bind must never be routed to (a full suite running
beside another one on the same machine answered an upgrade with another server's 200)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from navigator.tenants.launch import listens_in_tree, wait_ready
from navigator.tenants.procs import SpawnSpec, spawn
from navigator.tenants.tenantstate import SupervisorPolicy
from tests.fixtures.apps.support import run

pytestmark = pytest.mark.timeout(30)

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
LISTENER = ("import socket, sys, time\n"
            "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)\n"
            "print('listening', flush=True)\n"
            "while True:\n"
            f"    c, _ = s.accept(); c.recv(65536); c.sendall({ANSWER!r}); c.close()\n")
POLICY = SupervisorPolicy()


async def foreign_server() -> tuple[asyncio.Server, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(ANSWER)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_an_answer_from_another_program_is_not_readiness(tmp_path: Path) -> None:
    async def body() -> None:
        server, port = await foreign_server()  # "another program" holding the port
        child = await spawn(SpawnSpec("sleeper", (sys.executable, "-c",
                                                  "import time; time.sleep(30)"), {}))
        try:
            assert not listens_in_tree(child.pid, port)
            assert await wait_ready(port, "/up", child, 0.5, POLICY) is False
        finally:
            await child.stop(1.0)
            server.close()
            await server.wait_closed()
    run(body)


def test_the_tenants_own_listener_is_readiness(tmp_path: Path) -> None:
    """A shell wrapper's child counts (the listener is a grandchild of the spawned pid)."""
    async def body() -> None:
        server, port = await foreign_server()  # only to find a free port, then free it
        server.close()
        await server.wait_closed()
        script = tmp_path / "listener.py"
        script.write_text(LISTENER)
        child = await spawn(SpawnSpec("wrapped", ("/bin/sh", "-c",
                                                  f"{sys.executable} {script} {port}; :"), {}))
        try:
            assert await wait_ready(port, "/up", child, 10.0, POLICY) is True
            assert listens_in_tree(child.pid, port)
        finally:
            await child.stop(1.0)
    run(body)
