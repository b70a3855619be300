"""Machine idle on a real loop against a fake Fly Machines API on a Unix socket."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import pytest

from navigator.config.runtime import IdleSettings
from navigator.tenants.hooks import HookResult
from navigator.tenants.idle import FlyMachineAction, MachineIdle, Phase
from tests.fixtures.apps.support import run, wait_for

pytestmark = pytest.mark.timeout(60)


class FakeFlyApi:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        body = b'{"ok": true}'
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s"
                     % (self.status, len(body), body))
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_suspend_called_once_then_resume_hooks_hold_requests(tmp_path: Path, loop: str) -> None:
    async def body() -> None:
        api = FakeFlyApi()
        sock = str(tmp_path / "api.sock")
        server = await asyncio.start_unix_server(api.handle, sock)
        hooks: list[str] = []
        resume_gate = asyncio.Event()

        async def run_hooks(which: Literal["idle", "resume"]) -> HookResult:
            hooks.append(which)
            if which == "resume":
                await resume_gate.wait()
            return HookResult(True)

        action = FlyMachineAction("suspend", sock, "myapp", "m123")
        idle = MachineIdle(IdleSettings("suspend", 0.1, fly_api_socket=sock),
                           asyncio.get_running_loop(), action, run_hooks)
        idle.start()
        await wait_for(lambda: idle.phase is Phase.SUSPENDED, message="suspended")
        assert len(api.requests) == 1
        head = api.requests[0].decode()
        assert head.startswith("POST /v1/apps/myapp/machines/m123/suspend HTTP/1.1\r\n")
        assert "Host: flaps\r\n" in head
        assert "Content-Length: 0\r\n" in head
        idle.request_started()
        held = asyncio.ensure_future(idle.wait_resumed())
        await wait_for(lambda: "resume" in hooks)
        assert not held.done()
        resume_gate.set()
        await asyncio.wait_for(held, 5)
        idle.request_finished()
        assert len(api.requests) == 1
        assert hooks == ["idle", "resume"]
        idle.stop()
        server.close()
        await server.wait_closed()
    run(body, loop)


def test_api_error_is_logged_and_not_treated_as_suspended(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        api = FakeFlyApi(status=500)
        sock = str(tmp_path / "api.sock")
        server = await asyncio.start_unix_server(api.handle, sock)
        action = FlyMachineAction("stop", sock, "myapp", "m1")
        assert await action() is False
        assert api.requests[0].startswith(b"POST /v1/apps/myapp/machines/m1/stop ")
        missing = FlyMachineAction("stop", str(tmp_path / "nothing.sock"), "a", "b")
        assert await missing() is False
        server.close()
        await server.wait_closed()
    run(body)
    assert "answered 500" in caplog.text
