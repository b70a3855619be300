"""The control listener over a real unix socket: stale sockets, foreign files, bad requests."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from navigator.ops.control import ControlError, ControlListener, call

pytestmark = pytest.mark.timeout(30)


async def echo(argument: str) -> str:
    if argument == "refuse":
        raise ControlError("refused: because")
    if argument == "crash":
        raise RuntimeError("bug")
    return f"did {argument}"


def raw(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(data)
        return sock.recv(4096)


def test_listener_answers_and_refuses(tmp_path: Path) -> None:
    path = tmp_path / "nav.pid.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))  # a killed server's socket file: nobody listens on it
    stale.close()

    async def body() -> None:
        listener = ControlListener(path, {"restart": echo})
        assert await listener.start()
        try:
            answers = await asyncio.gather(*(asyncio.to_thread(call, path, "restart", arg, 5)
                                             for arg in ("a", "refuse", "crash")))
            assert answers == [(True, "did a"), (False, "refused: because"),
                               (False, "internal error: bug")]
            assert await asyncio.to_thread(call, path, "stop", "", 5) == \
                (False, "unknown command 'stop' (known: restart)")
            long = await asyncio.to_thread(raw, path, b"restart " + b"x" * 70000 + b"\n")
            assert long.startswith(b"error ")
            bad = await asyncio.to_thread(raw, path, b"\xff\n")
            assert bad.startswith(b"error ")
        finally:
            await listener.close()
        assert not path.exists()

    asyncio.run(body())


def test_a_live_server_s_socket_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "nav.pid.sock"

    async def body() -> None:
        first = ControlListener(path, {"restart": echo})
        assert await first.start()
        second = ControlListener(path, {"restart": echo})
        try:
            assert not await second.start()  # two servers with one pid_file: the first keeps it
            assert await asyncio.to_thread(call, path, "restart", "a", 5) == (True, "did a")
        finally:
            await second.close()
            await first.close()

    asyncio.run(body())


def test_a_regular_file_at_the_path_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "nav.pid.sock"
    path.write_text("not a socket")

    async def body() -> None:
        listener = ControlListener(path, {"restart": echo})
        assert not await listener.start()
        await listener.close()

    asyncio.run(body())
    assert path.read_text() == "not a socket"
