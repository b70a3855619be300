"""Why an exchange failed, and the one map from that to the HTTP status the client gets.

Room: pure. Handlers, the proxy, CGI and the connection name a `Failure`; only
`status_of` turns it into a number, so the same cause always gives the same status (the
access log's status column and the error page agree everywhere).
"""

from __future__ import annotations

import enum
from typing import Final


class Failure(enum.Enum):
    """A cause of failure after a request was dispatched."""

    UNREACHABLE = "unreachable"  # the backend refused or did not answer the connect
    BAD_RESPONSE = "bad_response"  # the backend closed or answered something unusable
    TIMEOUT = "timeout"  # the backend took longer than upstream_response_timeout
    CLIENT_GONE = "client_gone"  # the client closed before the response began
    HANDLER_ERROR = "handler_error"  # a bug, or a tenant that cannot be started
    UNAVAILABLE = "unavailable"  # starting, backing off, another machine unreachable, or
    # no backend connection free within the connect timeout (the pool's connect queue)
    TOO_LARGE = "too_large"  # a body over a handler's own limit


STATUS: Final[dict[Failure, int]] = {
    Failure.UNREACHABLE: 502,
    Failure.BAD_RESPONSE: 502,
    Failure.TIMEOUT: 504,
    Failure.CLIENT_GONE: 499,  # nginx's convention: logged, never sent
    Failure.HANDLER_ERROR: 500,
    Failure.UNAVAILABLE: 503,
    Failure.TOO_LARGE: 413,
}


def status_of(failure: Failure) -> int:
    """The HTTP status for a failure (the access log's status when nothing was sent)."""
    return STATUS[failure]
