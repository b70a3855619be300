"""Logging setup, child-output rendering and secret redaction.

Room: ops (I/O-adjacent). `configure_logging` installs handlers on the `navigator` logger
tree once at startup (and again on reload). The per-request access log is its own room,
`navigator.accesslog`. Reference: navigator-reference.md section 16.

Invariants:
- no module-level mutable state: timestamp caches, buffers and sockets live on instances;
  module constants are immutable (tuples, frozensets, mapping proxies, compiled regexes);
- `configure_logging` is idempotent: it closes and replaces the handlers it installed before;
- child output (logger `navigator.output`) is always shown at INFO, whatever the server level;
- an access line is exactly one JSON object on one line, keys in the reference's order, the
  optional keys present only when non-empty;
- nothing here ever blocks the event loop for long: stdout is written with `os.write` once
  per flush (partial/EAGAIN writes are carried over), the Vector socket is a non-blocking
  AF_UNIX stream socket whose failures drop lines silently;
- secrets are masked before they reach any handler that uses `redact_env`/`redact_header`,
  and log extras whose key looks secret are masked by both formatters.

Must not touch: routing decisions, processes, any socket other than the Vector Unix socket,
`os.environ` except `LOG_LEVEL` at setup time.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import IO, TextIO

import msgspec

from navigator.runtime import LoggingSettings, VectorSettings

ROOT_LOGGER = "navigator"
OUTPUT_LOGGER = "navigator.output"

PASSTHROUGH_KEYS: tuple[str, ...] = ("@timestamp", "severity")
"""A child line that is a JSON object holding all of these keys is passed through untouched
(Rails' JSON logger, reference section 16 [legacy])."""

SENSITIVE_KEY_PARTS: tuple[str, ...] = (
    "PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH",
)
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
MASK = "***"

_VECTOR_PENDING_LIMIT = 256 * 1024
_VECTOR_RETRY = 1.0  # seconds between reconnect attempts while Vector is down

_LEVELS = MappingProxyType({
    "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
    "warning": logging.WARNING, "error": logging.ERROR,
})
_LEVEL_NAMES = MappingProxyType({
    logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN",
    logging.ERROR: "ERROR", logging.CRITICAL: "CRITICAL",
})
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName",
}
# scheme://user:password@  (password greedy up to the last "@" before a "/" or blank)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:@/\s]*)"
                       r"(?::(?P<pw>[^/\s]*))?@")
_NEEDS_QUOTE = re.compile(r'[\s"=\\]')
_MILLIS = tuple(f"{ms:03d}" for ms in range(1000))


# ---------------------------------------------------------------------------- redaction

def is_sensitive_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SENSITIVE_KEY_PARTS)


def _mask_userinfo(match: re.Match[str]) -> str:
    if match["pw"] is None:  # token-as-username (https://TOKEN@host)
        return f"{match['scheme']}{MASK}@"
    return f"{match['scheme']}{match['user']}:{MASK}@"


def redact_url(text: str) -> str:
    """Mask the password (or a bare userinfo token) of every URL in `text`."""
    if "@" not in text:
        return text
    return _USERINFO.sub(_mask_userinfo, text)


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of `env` safe to log: secret-looking keys masked, URL passwords masked."""
    return {key: (MASK if value and is_sensitive_name(key) else redact_url(value))
            for key, value in env.items()}


def redact_header(name: str, value: str) -> str:
    """A header value safe to log: credentials keep only their scheme, cookies their names."""
    lower = name.lower()
    if lower not in SENSITIVE_HEADERS:
        return redact_url(value)
    if lower.endswith("authorization"):
        scheme, sep, _ = value.partition(" ")
        return f"{scheme} {MASK}" if sep else MASK
    cookies = (part.strip().partition("=")[0] for part in value.split(";"))
    return "; ".join(f"{cookie}={MASK}" for cookie in cookies if cookie)


def _safe_value(key: str, value: object) -> object:
    if is_sensitive_name(key):
        return MASK
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Mapping):
        return redact_env({str(k): str(v) for k, v in value.items()})
    return value


# ---------------------------------------------------------------------------- timestamps

class IsoClock:
    """ISO-8601 local time with milliseconds and offset (`Z` for UTC), e.g.
    `2025-01-02T03:04:05.678Z`. The per-second prefix is cached: one log line per request
    must not pay for strftime."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: tuple[int, str, str] = (-1, "", "")  # one tuple: swapped atomically

    def format(self, ts: float) -> str:
        second, prefix, suffix = self._cache
        millis = int(ts * 1000)  # one rounding step: 0.123 stays 123, not 122.99999
        whole = millis // 1000
        if whole != second:
            tm = time.localtime(whole)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", tm)
            offset = tm.tm_gmtoff
            sign = "+" if offset >= 0 else "-"
            offset = abs(offset)
            suffix = "Z" if offset == 0 else f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"
            self._cache = (whole, prefix, suffix)
        return prefix + _MILLIS[millis % 1000] + suffix


# ---------------------------------------------------------------------------- formatters

def resolve_level(level: str | None) -> int:
    """`level` argument, else `LOG_LEVEL`, else info. Unknown names mean info."""
    name = (level if level is not None else os.environ.get("LOG_LEVEL", "")).strip().lower()
    return _LEVELS.get(name, logging.INFO)


def is_structured_line(line: str, keys: tuple[str, ...] = PASSTHROUGH_KEYS) -> bool:
    """True for a line that already is a JSON object holding every key in `keys`."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return False
    if not all(f'"{key}"' in text for key in keys):  # cheap reject before decoding
        return False
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return isinstance(doc, dict) and all(key in doc for key in keys)


def _extras(record: logging.LogRecord) -> Iterator[tuple[str, object]]:
    for key, value in record.__dict__.items():
        if key not in _RECORD_ATTRS and not key.startswith("_"):
            yield key, _safe_value(key, value)


def _output_parts(record: logging.LogRecord) -> tuple[str, str, str]:
    return (str(getattr(record, "source", "?")), str(getattr(record, "stream", "stdout")),
            record.getMessage())


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value...`; child output as `[source.stream] line`."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = IsoClock()

    def format(self, record: logging.LogRecord) -> str:
        if record.name == OUTPUT_LOGGER:
            source, stream, line = _output_parts(record)
            return f"[{source}.{stream}] {line}"
        parts = [self._clock.format(record.created),
                 _LEVEL_NAMES.get(record.levelno, record.levelname), record.name,
                 record.getMessage()]
        for key, value in _extras(record):
            text = str(value)
            if not text or _NEEDS_QUOTE.search(text):
                text = msgspec.json.encode(text).decode()
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `@timestamp`, `level`, `logger`, `message`, extra fields.
    Child output: `{"@timestamp","source","stream","message"}` or the line itself when it
    already is a structured JSON log line."""

    def __init__(self, *, tenant_field: bool = False) -> None:
        super().__init__()
        self._clock = IsoClock()
        self._encoder = msgspec.json.Encoder(enc_hook=str)
        self._tenant_field = tenant_field  # the Vector copy also names the tenant

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object]
        if record.name == OUTPUT_LOGGER:
            source, stream, line = _output_parts(record)
            if is_structured_line(line):
                return line
            doc = {"@timestamp": self._clock.format(record.created), "source": source,
                   "stream": stream, "message": line}
            if self._tenant_field:
                doc["tenant"] = source
            return self._encoder.encode(doc).decode()
        doc = {"@timestamp": self._clock.format(record.created),
               "level": _LEVEL_NAMES.get(record.levelno, record.levelname),
               "logger": record.name, "message": record.getMessage()}
        for key, value in _extras(record):
            doc.setdefault(key, value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return self._encoder.encode(doc).decode()


# ---------------------------------------------------------------------------- handlers

class AppFileHandler(logging.Handler):
    """Appends child output to `logging.file`, `{{app}}` replaced by the process name.

    Files are opened on first use (directories created) and kept open until `close()`.
    A path that cannot be written is reported once on stderr and then skipped."""

    def __init__(self, pattern: str, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._pattern = pattern
        self._files: dict[str, IO[str]] = {}
        self._failed: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        path = self._pattern.replace("{{app}}", str(getattr(record, "source", "unknown")))
        if path in self._failed:
            return
        try:
            handle = self._files.get(path)
            if handle is None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                handle = self._files[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115
            handle.write(self.format(record) + "\n")
            handle.flush()
        except OSError as exc:
            self._failed.add(path)
            sys.stderr.write(f"navigator: cannot write log file {path}: {exc}\n")

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        super().close()


class VectorSink:
    """Best-effort JSON-lines writer to Vector's Unix stream socket.

    Never stalls the loop: the socket is non-blocking (connect on AF_UNIX either succeeds
    at once or fails with EAGAIN/ENOENT/ECONNREFUSED), a refused connect is retried at most
    once per `retry` seconds, EAGAIN keeps up to 256 KiB pending (newer lines are dropped
    beyond that) and any other error closes the socket. A partially sent chunk is finished
    before anything newer so Vector never sees a torn line. Thread-safe (logging handlers
    may run off the loop thread)."""

    __slots__ = ("_lock", "_next_attempt", "_path", "_pending", "_retry", "_sock")

    def __init__(self, path: str, *, retry: float = _VECTOR_RETRY) -> None:
        self._path = path
        self._retry = retry
        self._sock: socket.socket | None = None
        self._next_attempt = 0.0
        self._pending = b""
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def send(self, data: bytes) -> None:
        with self._lock:
            sock = self._sock if self._sock is not None else self._connect()
            if sock is None:
                return
            if self._pending:
                fits = len(self._pending) + len(data) <= _VECTOR_PENDING_LIMIT
                data = self._pending + data if fits else self._pending
                self._pending = b""
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close()
                return
            if sent < len(data):
                self._pending = data[sent:]

    def _connect(self) -> socket.socket | None:
        now = time.monotonic()
        if now < self._next_attempt:
            return None
        self._next_attempt = now + self._retry
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            return None
        self._sock = sock
        return sock

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._pending = b""

    def close(self) -> None:
        with self._lock:
            self._close()


def open_vector(settings: VectorSettings) -> VectorSink | None:
    """A sink when Vector is enabled with a socket path, else None (nothing connects yet)."""
    return VectorSink(settings.socket) if settings.enabled and settings.socket else None


class VectorHandler(logging.Handler):
    """Sends child output to Vector as JSON lines (with `tenant`)."""

    def __init__(self, sink: VectorSink) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter(tenant_field=True))
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self._sink.send((self.format(record) + "\n").encode())

    def close(self) -> None:
        self._sink.close()
        super().close()


def configure_logging(settings: LoggingSettings, level: str | None = None,
                      stream: TextIO | None = None) -> None:
    """Install navigator's handlers (replacing earlier ones); `stream` defaults to stdout."""
    root = logging.getLogger(ROOT_LOGGER)
    output = logging.getLogger(OUTPUT_LOGGER)
    for logger in (root, output):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
    root.setLevel(resolve_level(level))
    root.propagate = False
    json_format = settings.format == "json"
    console = logging.StreamHandler(stream if stream is not None else sys.stdout)
    console.setFormatter(JsonFormatter() if json_format else TextFormatter())
    root.addHandler(console)
    output.setLevel(logging.INFO)
    output.propagate = True
    if settings.file:
        output.addHandler(AppFileHandler(
            settings.file, JsonFormatter() if json_format else TextFormatter()))
    sink = open_vector(settings.vector)
    if sink is not None:
        output.addHandler(VectorHandler(sink))
    name = level if level is not None else os.environ.get("LOG_LEVEL", "")
    if name.strip() and name.strip().lower() not in _LEVELS:
        root.warning("unknown log level %r, using info", name)
