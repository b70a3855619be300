"""Tenant port allocation (reference section 10.4).

Room: supervisor helper, nearly pure. The only I/O is a short-lived bind probe socket; no
asyncio, no clocks. One `PortAllocator` lives on the supervisor; nothing else constructs it.

Invariants:
- a port is handed to at most one owner at a time; `release` makes it available again
  (a failed start releases too: the reference leaks it);
- the lowest free port of `start .. start+count-1` wins, so ports stay predictable;
- "free" = not held by us AND bindable on 0.0.0.0. Tenants usually listen on all interfaces
  (Rails' legacy `-b 0.0.0.0`), and on Linux a 0.0.0.0 bind also collides with a listener on
  any single address (127.0.0.1 included), so this one probe covers every interface a tenant
  may choose. SO_REUSEADDR is set on the probe so a port in TIME_WAIT after the previous
  tenant stopped still counts as free (servers set SO_REUSEADDR themselves);
- a reconfigured range keeps ports already held until they are released.

Must not touch: processes, os.environ, the event loop.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

PROBE_HOST = "0.0.0.0"


class NoFreePort(Exception):
    """Every port of the range is held or bound by someone else."""


def port_is_bindable(port: int, host: str = PROBE_HOST) -> bool:
    """True when nothing listens on `host:port` (TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out the lowest free port of a range to one owner each."""

    __slots__ = ("_bindable", "_count", "_held", "_start")

    def __init__(self, start: int, count: int,
                 bindable: Callable[[int], bool] = port_is_bindable) -> None:
        self._start = start
        self._count = count
        self._held: dict[int, str] = {}
        self._bindable = bindable

    def reconfigure(self, start: int, count: int) -> None:
        """New range for future allocations; ports already held stay held."""
        self._start = start
        self._count = count

    def allocate(self, owner: str) -> int:
        for port in range(self._start, self._start + self._count):
            if port in self._held or not self._bindable(port):
                continue
            self._held[port] = owner
            return port
        raise NoFreePort(f"no free port in {self._start}..{self._start + self._count - 1}")

    def release(self, port: int) -> None:
        self._held.pop(port, None)

    def holder(self, port: int) -> str | None:
        return self._held.get(port)

    @property
    def held(self) -> dict[int, str]:
        return dict(self._held)
