"""The Machines API client over a real Unix socket: answers, errors, and never a hang."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from navigator.proxy.flyapi import MachineApiError, machine_action
from tests.integration.fake_machines_api import fake_machines_api

pytestmark = pytest.mark.timeout(30)


def test_start_call_reaches_the_api(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    with fake_machines_api(sock) as api:
        status, body = asyncio.run(machine_action(str(sock), "app", "m1", "start"))
        assert (status, body) == (200, b'{"previous_state": "stopped"}')
        assert [c.path for c in api.calls] == ["/v1/apps/app/machines/m1/start"]


def test_error_status_is_returned_not_raised(tmp_path: Path) -> None:
    sock = tmp_path / "api.sock"
    with fake_machines_api(sock, status=409):
        status, _ = asyncio.run(machine_action(str(sock), "app", "m1", "start"))
    assert status == 409


async def _serve_then_call(sock: Path, answer: bytes | None, budget: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            if answer is None:
                await asyncio.sleep(budget * 10)  # never answers within the budget
            else:
                writer.write(answer)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, str(sock))
    try:
        await machine_action(str(sock), "app", "m1", "start", budget=budget)
    finally:
        server.close()


@pytest.mark.parametrize(("answer", "reason"), [
    (b"garbage\r\n\r\n", "bad status line"),
    (None, "no answer within"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "5 bytes read"),
])
def test_failures_are_machine_api_errors(tmp_path: Path, answer: bytes | None,
                                         reason: str) -> None:
    with pytest.raises(MachineApiError) as info:
        asyncio.run(_serve_then_call(tmp_path / "api.sock", answer, 0.2))
    assert reason in str(info.value)


def test_missing_socket_is_a_machine_api_error(tmp_path: Path) -> None:
    with pytest.raises(MachineApiError):
        asyncio.run(machine_action(str(tmp_path / "none.sock"), "app", "m1", "start"))
