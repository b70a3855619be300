"""In-memory stand-ins for the I/O around the request core, shared by the protocol unit tests
and benchmarks/bench_hotpath.py (one copy, so the benchmark drives exactly what tests drive).

`MemoryTransport` is enough of a uvloop transport for `HttpConnection` and
`UpstreamConnection`: it keeps (or only counts) what is written and records pause, resume,
half-close and close. `FixedTenants` is the supervisor's request-path API with every tenant
either already running on one port or never ready.
"""

from __future__ import annotations

from typing import Any

from navigator.config.runtime import Tenant


class MemoryTransport:
    """Collects written bytes (or, with keep=False, only counts them)."""

    def __init__(self, keep: bool = True, peer: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.keep = keep
        self.peer = peer
        self.data = bytearray()
        self.written = 0
        self.paused = False
        self.closed = False
        self.aborted = False
        self.eof_written = False

    def write(self, data: bytes | memoryview) -> None:
        self.written += len(data)
        if self.keep:
            self.data += data

    def writelines(self, parts: list[bytes | memoryview]) -> None:
        for part in parts:
            self.write(part)

    def take(self) -> bytes:
        """What was written since the last take."""
        data, self.data = bytes(self.data), bytearray()
        return data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Nothing is buffered in memory."""


class FixedLease:
    """A slot on the one fixed backend; counts what the request path does with it."""

    def __init__(self, port: int) -> None:
        self.port: int | None = port
        self.held = 0

    def release(self) -> None:
        self.held -= 1

    def tunnel_opened(self) -> None:
        """Still held: the tunnel releases it."""

    def tunnel_closed(self) -> None:
        self.release()


class FixedTenants:
    """Every tenant ready on `port`, or (port None) never started by this test."""

    def __init__(self, port: int | None) -> None:
        self.port = port
        self.lease = FixedLease(port or 0)

    def acquire_now(self, tenant: Tenant) -> FixedLease | None:
        if self.port is None:
            return None
        self.lease.held += 1
        return self.lease

    async def acquire(self, tenant: Tenant) -> FixedLease:
        if self.port is None:
            raise AssertionError("no tenant in this config")
        self.lease.held += 1
        return self.lease
