"""Flow-control vocabulary shared by the client protocol and its handlers.

Room: constants and the one write helper both sides (client and upstream) use; no other
navigator import, so the upstream room can use it without knowing the client side.
Reading a client socket can be paused for several independent reasons; each is one bit,
and reading resumes only when no bit is left set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

PAUSE_PIPELINE: Final = 1  # a pipelined request waits for its turn
PAUSE_UPSTREAM: Final = 2  # the backend's write buffer is full
PAUSE_BUFFER: Final = 4  # body bytes are buffered while no handler can take them
PAUSE_TUNNEL: Final = 8  # the tunnel's other side is slow

BODY_BUFFER_LIMIT: Final = 256 * 1024
"""Bytes of request body held while a tenant starts or a backend connects."""

JOIN_LIMIT: Final = 16 * 1024
"""Parts of one message are joined into one buffer up to this size, and written with writev
beyond it (see `write_parts`)."""


def write_parts(transport: asyncio.WriteTransport, parts: Sequence[bytes | memoryview]) -> None:
    """Write the parts of one message with one send call and as few copies as are cheap.

    uvloop sends a single buffer with a plain write() and several with one writev() through
    a per-call context object: for a small head and body, joining them costs less than that
    context; for a large body, writev saves copying it.
    """
    if len(parts) == 1:
        transport.write(parts[0])
        return
    size = 0
    for part in parts:  # a loop, not sum(map(len, ...)): compiled, no builtins looked up
        size += len(part)
    if size <= JOIN_LIMIT:
        transport.write(b"".join(parts))
    else:
        transport.writelines(parts)
