"""The Fly Machines API over the machine's local Unix socket (`/.fly/api`, no token needed).

Room: I/O (one short HTTP/1.1 exchange per call, `Connection: close`). Used by `proxy.wake`
to start another machine before a replay; the idle room's suspend/stop speaks the same
protocol on its own (`tenants.idle.FlyMachineAction`).

Invariants: a call never outlives its timeout; any failure (no socket, refused, timeout,
garbled answer) is a `MachineApiError`, never a hang or another exception type.
"""

from __future__ import annotations

import asyncio

FLY_API_TIMEOUT = 10.0


class MachineApiError(Exception):
    """The Machines API could not be reached or answered garbage."""


async def machine_action(socket_path: str, app: str, machine_id: str, verb: str, *,
                         budget: float = FLY_API_TIMEOUT) -> tuple[int, bytes]:
    """`POST /v1/apps/{app}/machines/{id}/{verb}`: (status, body) of the answer."""
    try:
        return await asyncio.wait_for(_post(socket_path, f"/v1/apps/{app}/machines/"
                                            f"{machine_id}/{verb}"), budget)
    except TimeoutError:
        raise MachineApiError(f"no answer within {budget:.1f}s") from None
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        raise MachineApiError(str(exc) or type(exc).__name__) from None


async def _post(socket_path: str, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: flaps\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = _content_length(head)
        body = (await reader.readexactly(min(length, 65536)) if length is not None
                else await reader.read(65536))  # small JSON; the server closes after it
    finally:
        writer.close()
    status_line = head.split(b"\r\n", 1)[0]
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {status_line[:80]!r}")
    return int(parts[1]), body


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None
