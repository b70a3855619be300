"""HTTP/1.x wire helpers: framing rules, header rewriting, canned responses.

Room: PURE. Bytes in, bytes out; no sockets, no event loop, no clocks. The protocol calls
these at fixed points (headers complete, response head, errors). Everything that can be
computed once (status lines, hop-by-hop sets, canned error responses) is computed at import
into immutable constants, so the hot path only joins byte strings.

Invariants:
- a request we forward is re-framed by us (our own Content-Length or chunked), never copied
  raw, so ambiguous framing can never reach a backend (RFC 9112 §6.1, §6.3);
- hop-by-hop headers (RFC 9110 §7.6.1) and every header named in `Connection` are dropped in
  both directions; X-Forwarded-* are built by us;
- a request-target is validated here before routing (`request_target`); which path every
  later stage sees is written down once, in `routing`'s module docstring.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from http import HTTPStatus
from types import MappingProxyType
from typing import Final

Header = tuple[bytes, bytes]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
"""RFC 9110 §7.6.1 plus the de-facto Proxy-Connection/Keep-Alive (as Caddy and Go do)."""

# Headers we always rebuild on the way to the backend.
REBUILT_REQUEST_HEADERS: Final = frozenset(
    {b"content-length", b"expect", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host",
     b"x-real-ip"}
)
REBUILT_RESPONSE_HEADERS: Final = frozenset({b"content-length"})


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("latin-1"))


# Never written after import; a plain dict so that mypyc's get is a C call (see LOWER_NAMES).
STATUS_LINES: Final[dict[int, bytes]] = {s.value: _status_line(s.value) for s in HTTPStatus}


def status_line(status: int) -> bytes:
    """The HTTP/1.1 status line for `status` (precomputed for every known code)."""
    line = STATUS_LINES.get(status)
    return line if line is not None else _status_line(status)


class HttpError(Exception):
    """A request we refuse: carries the status to answer with before closing."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@functools.lru_cache(maxsize=256)
def connection_tokens(value: bytes) -> frozenset[bytes]:
    """The lower-cased tokens of a Connection header value (a handful of values, `keep-alive`,
    `close`, `Upgrade`, make up nearly all traffic: those are looked up, not parsed)."""
    known = _COMMON_CONNECTION.get(value)
    if known is not None:
        return known
    return frozenset(t.strip().lower() for t in value.split(b",") if t.strip())


# Lookup tables below are plain dicts, never written after import: mypyc calls dict.get in C,
# a MappingProxyType's get is a Python method call (~400 instructions).
_COMMON_CONNECTION: Final[dict[bytes, frozenset[bytes]]] = {
    spelling: frozenset({spelling.lower()})
    for token in (b"keep-alive", b"close", b"upgrade")
    for spelling in (token, token.title(), token.upper())
}


# Header names as clients and backends usually spell them (as given, lower-case, and Go's
# canonical form), mapped to their lower-case form: a dict lookup instead of `bytes.lower()`,
# a method call and a new object per header. The lower-case names are these constants, whose
# hashes are cached, so the set and dict lookups that follow do not hash again.
_COMMON_NAMES: Final = (
    b"Host", b"User-Agent", b"Accept", b"Accept-Encoding", b"Accept-Language",
    b"Accept-Charset", b"Accept-Ranges", b"Connection", b"Keep-Alive", b"Cookie",
    b"Set-Cookie", b"Referer", b"Origin", b"Authorization", b"Cache-Control", b"Pragma",
    b"Content-Type", b"Content-Length", b"Content-Encoding", b"Content-Language",
    b"Content-Disposition", b"Content-Security-Policy", b"Content-Range", b"Date", b"Server",
    b"ETag", b"Expires", b"Last-Modified", b"If-Modified-Since", b"If-None-Match", b"If-Match",
    b"If-Range", b"If-Unmodified-Since", b"Range", b"Location", b"Vary", b"Transfer-Encoding",
    b"TE", b"Trailer", b"Upgrade", b"Via", b"X-Forwarded-For", b"X-Forwarded-Proto",
    b"X-Forwarded-Host", b"X-Forwarded-Prefix", b"X-Real-IP", b"X-Request-Id", b"X-Runtime",
    b"X-Frame-Options", b"X-Content-Type-Options", b"X-XSS-Protection",
    b"X-Permitted-Cross-Domain-Policies", b"Strict-Transport-Security", b"Referrer-Policy",
    b"Permissions-Policy", b"Access-Control-Allow-Origin", b"Sec-Fetch-Site",
    b"Sec-Fetch-Mode", b"Sec-Fetch-Dest", b"Sec-Fetch-User", b"Sec-Ch-Ua", b"Sec-Ch-Ua-Mobile",
    b"Sec-Ch-Ua-Platform", b"Upgrade-Insecure-Requests", b"DNT", b"Expect",
    b"Proxy-Connection", b"Proxy-Authorization", b"Proxy-Authenticate", b"WWW-Authenticate",
    b"Link", b"Age", b"Allow", b"Retry-After", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version",
    b"Sec-WebSocket-Extensions", b"Sec-WebSocket-Protocol", b"Sec-WebSocket-Accept",
    b"Fly-Request-Id", b"Fly-Client-IP", b"Fly-Replay", b"Fly-Forwarded-Port", b"Fly-Region",
    b"Priority", b"X-Requested-With", b"X-CSRF-Token", b"X-Amzn-Trace-Id",
)
LOWER_NAMES: Final[dict[bytes, bytes]] = {
    spelling: name.lower()
    for name in _COMMON_NAMES
    for spelling in (name, name.lower(), b"-".join(p.capitalize() for p in name.split(b"-")))
}


def lower_name(name: bytes) -> bytes:
    """`name.lower()`, looked up for the usual names (see LOWER_NAMES)."""
    known = LOWER_NAMES.get(name)
    return known if known is not None else name.lower()


def check_request_framing(
    *,
    http_minor: int,
    host_count: int,
    content_lengths: list[bytes],
    transfer_encodings: list[bytes],
    max_body: int | None,
) -> int | None:
    """Validate the framing of a request head (RFC 9112 §6.1, §6.3, §3.2).

    Returns the declared Content-Length (None when absent or chunked). Raises HttpError for
    anything ambiguous: we never guess how a body is delimited.
    """
    if http_minor >= 1 and host_count != 1:
        raise HttpError(400, "missing or duplicate Host header")
    if host_count > 1:
        raise HttpError(400, "duplicate Host header")
    if transfer_encodings:
        if content_lengths:
            raise HttpError(400, "both Content-Length and Transfer-Encoding")
        if http_minor == 0:
            raise HttpError(400, "Transfer-Encoding in an HTTP/1.0 request")
        codings = [c.strip().lower() for v in transfer_encodings for c in v.split(b",")]
        if codings != [b"chunked"]:
            # chunked must be last and only once (RFC 9112 §6.1); other codings we don't do.
            final_chunked_once = codings[-1:] == [b"chunked"] and codings.count(b"chunked") == 1
            raise HttpError(501 if final_chunked_once else 400, "unsupported Transfer-Encoding")
        return None
    if not content_lengths:
        return None
    values = {v.strip() for v in content_lengths for v in v.split(b",")}
    if len(values) != 1:
        raise HttpError(400, "conflicting Content-Length values")
    raw = values.pop()
    if not raw.isdigit() or len(raw) > 18:
        raise HttpError(400, "invalid Content-Length")
    length = int(raw)
    if max_body is not None and length > max_body:
        raise HttpError(413, "request body too large")
    return length


# --- the request-target ---------------------------------------------------------------------
# RFC 3986 §3.3 pchar (unreserved, sub-delims, ":", "@") plus "/" and "%" (checked apart);
# `?` only ever ends the path. In the query, RFC 3986 adds "/" and "?", and we also take the
# characters browsers send there unencoded (WHATWG URL query set): `[ ] { } | ^ \ ``, e.g.
# Rails' `ids[]=1`. The query never takes part in a routing decision and is forwarded as is.
_UNRESERVED: Final = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
PATH_BYTES: Final = _UNRESERVED + b"!$&'()*+,;=:@/%"
QUERY_BYTES: Final = PATH_BYTES + b"?[]{}|^\\`"
# Plain targets (no `%`, nothing outside the path set but `?`) map to letters only, so one
# `translate` plus `isalpha` clears nearly every request (~0.1 µs, no regex).
def _letters_table(allowed: bytes) -> bytes:
    """A translate table: allowed bytes become `a`, all others `!` (then test `isalpha`)."""
    return bytes(0x61 if byte in allowed else 0x21 for byte in range(256))


_PLAIN_TABLE: Final = _letters_table((PATH_BYTES + b"?").replace(b"%", b""))
_PATH_TABLE: Final = _letters_table(PATH_BYTES)
_QUERY_TABLE: Final = _letters_table(QUERY_BYTES)
_AUTHORITY_TABLE: Final = _letters_table(_UNRESERVED + b"!$&'()*+,;=:%[]")  # no userinfo "@"
_BAD_PERCENT: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")  # RFC 3986 §2.1; decoders disagree
_SCHEMES: Final = (b"http://", b"https://")


def request_target(target: bytes, method: bytes) -> bytes:
    """The request-target as origin-form (`/path[?query]`), or HttpError 400.

    RFC 9112 §3.2: origin-form; absolute-form (`http[s]://host[:port]/path`, routed by its
    path, the authority never dialled); asterisk-form only as `OPTIONS *` (returned as `*`,
    answered by routing). Refused before routing: a fragment (`#` never belongs in a
    request-target, and a tenant that drops it would act on another path than the one auth
    matched), any byte outside the sets above, a `%` without two hex digits. A plain target,
    which nearly every request has, costs one `translate` and one `isalpha`.
    """
    if target[:1] == b"/" and target.translate(_PLAIN_TABLE).isalpha():
        return target
    if target[:1] != b"/":
        target = _non_origin_form(target, method)
        if target == b"*":
            return target
    path, _, query = target.partition(b"?")
    if not path.translate(_PATH_TABLE).isalpha() or (
            query and not query.translate(_QUERY_TABLE).isalpha()):
        raise HttpError(400, "invalid character in the request-target")
    # find, not `in`: see reader.on_header (bytes `in` bytes raises and discards a TypeError)
    if target.find(b"%") >= 0 and _BAD_PERCENT.search(target) is not None:
        raise HttpError(400, "malformed percent-encoding in the request-target")
    return target


def _non_origin_form(target: bytes, method: bytes) -> bytes:
    if target == b"*":
        if method == b"OPTIONS":
            return target
        raise HttpError(400, "asterisk-form is only for OPTIONS")
    lowered = target[:8].lower()
    scheme = next((s for s in _SCHEMES if lowered.startswith(s)), None)
    if scheme is None:
        raise HttpError(400, "request-target is neither origin-form nor absolute-form")
    rest = target[len(scheme):]
    end = len(rest)
    for delimiter in (b"/", b"?"):
        found = rest.find(delimiter)
        if 0 <= found < end:
            end = found
    authority = rest[:end]
    if not authority or not authority.translate(_AUTHORITY_TABLE).isalpha():
        raise HttpError(400, "invalid authority in an absolute-form request-target")
    path = rest[end:]
    return path if path[:1] == b"/" else b"/" + path


def filter_headers(headers: Iterable[Header], drop: frozenset[bytes],
                   connection_named: frozenset[bytes]) -> list[bytes]:
    """Header lines (`name: value\\r\\n`) without hop-by-hop, rebuilt and Connection-named ones."""
    parts: list[bytes] = []
    append_headers(parts, headers, HeaderFilter(hop_by_hop_and(drop) | connection_named))
    return [b"".join(parts[i:i + 4]) for i in range(0, len(parts), 4)]


def hop_by_hop_and(drop: frozenset[bytes]) -> frozenset[bytes]:
    """`drop` plus the hop-by-hop names: the names of a `HeaderFilter` (build it once)."""
    return drop | HOP_BY_HOP


_CONNECTION_OPTIONS: Final = frozenset({b"close", b"keep-alive"})


class HeaderFilter:
    """The lower-case names a rebuilt head leaves out, and a bitmask of their lengths: most
    names are ruled out by their length alone, neither looked up nor hashed (a backend's
    Server, Date, Content-Type, ETag... against the hop-by-hop lengths 2, 7, 10, 14, 16-19).
    Built once per kind of head; immutable."""

    __slots__ = ("_absorbs", "lengths", "names")

    def __init__(self, names: frozenset[bytes]) -> None:
        self.names: Final = names
        lengths = 0
        for name in names:
            lengths |= 1 << len(name)
        self.lengths: Final = lengths
        # Connection tokens that add nothing: these names, and the options `close` and
        # `keep-alive`, which name no header ("Close" is a reserved field name, RFC 9110
        # §16.3.2.2): `Connection: close` on every request must not build a new filter.
        self._absorbs: Final = names | _CONNECTION_OPTIONS

    def drops(self, name: bytes) -> bool:
        """`name` (any case) is one of the names."""
        return (self.lengths >> len(name)) & 1 == 1 and lower_name(name) in self.names

    def adding(self, more: frozenset[bytes]) -> HeaderFilter:
        """This filter with `more` names (itself when they add nothing: `keep-alive`, `close`)."""
        return self if more <= self._absorbs else HeaderFilter(self.names | more)


def append_headers(parts: list[bytes], headers: Iterable[Header], skip: HeaderFilter) -> None:
    """Append each header `skip` does not drop as four pieces, name, `: `, value, CRLF, for
    the one `b"".join` of the whole head: no per-line formatting."""
    for name, value in headers:
        if not skip.drops(name):
            parts.append(name)
            parts.append(_COLON)
            parts.append(value)
            parts.append(CRLF)


_COLON: Final = b": "
CRLF: Final = b"\r\n"


def forwarded_for(existing: bytes | None, peer_ip: str) -> bytes:
    """X-Forwarded-For with the peer appended as a proper list (not the reference's ip:port).

    Appended to whatever the client sent, trusted or not: the backend can tell which entry
    we vouch for (the last), as after nginx's `$proxy_add_x_forwarded_for`."""
    if existing:
        return existing + b", " + peer_ip.encode("ascii")
    return peer_ip.encode("ascii")


# Hops of one's own network, skipped when looking for the client in X-Forwarded-For: loopback,
# RFC 1918, CGNAT/Tailscale, link-local, IPv6 unique-local (Fly's private network).
_INTERNAL_NETWORKS: Final = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10"))
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: bytes) -> IpAddress | None:
    """One forwarded address: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:443`."""
    value = text.strip().decode("latin-1")
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _internal(address: IpAddress) -> bool:
    return any(address in network for network in _INTERNAL_NETWORKS
               if network.version == address.version)


def trusted_client(peer_ip: str, forwarded_for: bytes | None, real_ip: bytes | None,
                   fly_client_ip: bytes | None) -> str:
    """The client's address when the peer is a proxy we trust (`server.trust_proxy`).

    In order: `Fly-Client-IP` (Fly's edge saw the client's socket); the right-most
    X-Forwarded-For entry that is not an internal hop (entries to its left were written by
    the client and prove nothing), or the right-most entry when all are internal; `X-Real-IP`;
    the peer. A value that is not an IP address stops the walk: it is never logged or passed
    on as an address. Without trust_proxy nobody calls this: the client is the peer.
    """
    if fly_client_ip is not None:
        address = _address(fly_client_ip)
        if address is not None:
            return str(address)
    if forwarded_for:
        nearest: IpAddress | None = None
        for entry in reversed(forwarded_for.split(b",")):
            address = _address(entry)
            if address is None:
                break
            if not _internal(address):
                return str(address)
            if nearest is None:
                nearest = address
        if nearest is not None:
            return str(nearest)
    if real_ip is not None:
        address = _address(real_ip)
        if address is not None:
            return str(address)
    return peer_ip


def encode_chunk(data: bytes | memoryview) -> bytes:
    """One chunk of a chunked body (RFC 9112 §7.1)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE_100: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def response(status: int, body: bytes = b"", headers: Iterable[tuple[str, str]] = (), *,
             keep_alive: bool = True, head_only: bool = False,
             content_type: str | None = "text/plain; charset=utf-8") -> bytes:
    """A complete response with a Content-Length body, for answers built by us."""
    parts = [status_line(status)]
    has_type = False
    for name, value in headers:
        if name.lower() == "content-type":
            has_type = True
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not has_type and content_type and status not in (204, 304):
        parts.append(b"Content-Type: %s\r\n" % content_type.encode("latin-1"))
    if status not in (204, 304) and not 100 <= status < 200:
        parts.append(b"Content-Length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only and status not in (204, 304):
        parts.append(body)
    return b"".join(parts)


def error_response(status: int, body: str | None = None, *, keep_alive: bool = False) -> bytes:
    """A short plain-text error; by default the connection closes after it."""
    text = body if body is not None else (STATUS_TEXT.get(status) or str(status))
    return response(status, text.encode("utf-8"), keep_alive=keep_alive)


STATUS_TEXT: Final = MappingProxyType(
    {
        400: "Bad Request",
        404: "404 page not found",
        408: "Request Timeout",
        413: "Request Entity Too Large",
        414: "URI Too Long",
        431: "Request Header Fields Too Large",
        499: "Client Closed Request",
        500: "Internal Server Error",
        501: "Not Implemented",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
)

# Canned bytes for the errors the protocol writes on its own (connection closes after them).
BAD_REQUEST: Final = error_response(400)
BAD_GATEWAY_CLOSE: Final = error_response(502)
GATEWAY_TIMEOUT_CLOSE: Final = error_response(504)
