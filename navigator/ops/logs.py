"""Logging setup, child-output rendering and secret redaction.

Room: ops (I/O-adjacent). `configure_logging` installs handlers on the `navigator` logger
tree once at startup (and again on reload). The per-request access log is its own room,
`navigator.ops.accesslog`. Reference: navigator-reference.md section 16.

Invariants:
- no module-level mutable state: timestamp caches, buffers and sockets live on instances;
  module constants are immutable (tuples, frozensets, mapping proxies, compiled regexes);
- `configure_logging` is idempotent: it closes and replaces the handlers it installed before;
- child output (logger `navigator.output`) is always shown at INFO, whatever the server level;
- an access line is exactly one JSON object on one line, keys in the reference's order, the
  optional keys present only when non-empty;
- nothing here ever blocks the event loop: every destination (stdout, `logging.file`, the
  Vector socket) is a bounded never-blocking `LineWriter` (navigator.ops.logwriter); lines a
  destination cannot take are dropped, counted and reported by one line once it drains;
- destinations carry: stdout — navigator's own lines, tenant/managed-process output, the
  access log; `logging.file` — tenant/managed-process output only; Vector — that output
  (JSON, with `tenant`) and the access log. Navigator's own lines go to stdout only;
- under `format: json` a child line is passed through untouched only when it is a JSON
  object with both `@timestamp` and `severity` (Rails' JSON logger); any other line, JSON
  or not, is wrapped as a `message`. Under `format: text` every child line is prefixed;
- secrets are masked before they reach any handler that uses `redact_env`/`redact_header`,
  and log extras whose key looks secret are masked by both formatters.

Must not touch: routing decisions, processes, any socket other than the Vector Unix socket,
`os.environ` except `LOG_LEVEL` at setup time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import IO, Any

import msgspec

from navigator.config.runtime import LoggingSettings, VectorSettings
from navigator.ops.logwriter import (
    CLOSE_TIMEOUT,
    FdLineWriter,
    FileLineWriter,
    LineWriter,
    Notice,
    writer_for_stream,
)

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

class LineHandler(logging.Handler):
    """A log handler that hands finished lines to a never-blocking `LineWriter`.

    While the writer is dropping anyway, records are counted as dropped without being
    formatted: a tenant flooding its stdout into a stalled pipe costs no formatting."""

    def __init__(self, writer: LineWriter, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        writer = self.writer
        if not writer.accepting:
            writer.skip()
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        writer.write(line.encode("utf-8", "replace") + b"\n")

    def close(self) -> None:
        self.writer.close()
        super().close()


def record_notice(formatter: logging.Formatter) -> Notice:
    """The drop report as one of navigator's own log lines, in the destination's format."""

    def notice(count: int, destination: str) -> bytes:
        record = logging.LogRecord(
            "navigator.logs", logging.WARNING, __file__, 0,
            "dropped %d log lines: %s was not accepting writes", (count, destination), None)
        return formatter.format(record).encode("utf-8", "replace") + b"\n"

    return notice


class AppFileHandler(logging.Handler):
    """Appends child output to `logging.file`, `{{app}}` replaced by the process name.

    One `FileLineWriter` per resolved path: files are opened on first use (directories
    created), reopened when deleted, and a full disk or an unwritable path drops lines
    (counted) instead of raising or blocking."""

    def __init__(self, pattern: str, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._pattern = pattern
        self._notice = record_notice(formatter)
        self._files: dict[str, FileLineWriter] = {}
        self._closed_drops = 0  # lines dropped by writers already closed

    @property
    def dropped(self) -> int:
        return self._closed_drops + sum(w.dropped for w in list(self._files.values()))

    def emit(self, record: logging.LogRecord) -> None:
        path = self._pattern.replace("{{app}}", str(getattr(record, "source", "unknown")))
        writer = self._files.get(path)
        if writer is None:
            writer = self._files[path] = FileLineWriter(path, "file", self._notice)
        writer.write(self.format(record).encode("utf-8", "replace") + b"\n")

    def close(self) -> None:
        for writer in self._files.values():
            writer.close()
            self._closed_drops += writer.dropped
        self._files.clear()
        super().close()


class VectorSink(LineWriter):
    """Best-effort JSON-lines writer to Vector's Unix stream socket.

    Never stalls the loop: the socket is non-blocking (connect on AF_UNIX either succeeds
    at once or fails with EAGAIN/ENOENT/ECONNREFUSED), a refused connect is retried at most
    once per `retry` seconds, EAGAIN keeps up to 256 KiB pending and any other error closes
    the socket. Lines that cannot be sent (Vector down, the backlog full, the connection
    broken) are dropped and counted, and the first send after that starts with one notice
    line. A partially sent chunk is finished before anything newer so Vector never sees a
    torn line. Thread-safe (logging handlers may run off the loop thread)."""

    __slots__ = ("_next_attempt", "_path", "_pending", "_retry", "_sock")

    def __init__(self, path: str, *, retry: float = _VECTOR_RETRY) -> None:
        super().__init__("vector", record_notice(JsonFormatter(tenant_field=True)))
        self._path = path
        self._retry = retry
        self._sock: socket.socket | None = None
        self._next_attempt = 0.0
        self._pending = b""

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def write(self, data: bytes) -> None:
        self.send(data)

    def send(self, data: bytes) -> None:
        with self._lock:
            sock = self._sock if self._sock is not None else self._connect()
            if sock is None:
                self.drop(data)
                return
            owed = 0
            if self._pending:  # a partly sent line first: never a notice in its middle
                if len(self._pending) + len(data) <= _VECTOR_PENDING_LIMIT:
                    data = self._pending + data
                else:
                    self.drop(data)
                    data = self._pending
                self._pending = b""
            elif self._dropped_since:
                owed = self._dropped_since
                data = self._report() + data
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.drop(data)
                if owed:  # the notice itself is not a lost line; it is still owed
                    self.dropped -= 1
                    self._dropped_since += owed - 1
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
        if self._pending:
            self.drop(self._pending)
        self._pending = b""

    def close(self, timeout: float = 0.0) -> None:
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
        self._sink.send(self.format(record).encode("utf-8", "replace") + b"\n")

    def close(self) -> None:
        self._sink.close()
        super().close()


class LogOutputs:
    """The destinations `configure_logging` opened, for the server to share and close.

    `stdout` carries navigator's own lines, tenant output and the access log (one writer,
    so lines from all three never tear each other); `files` and `vector` are the optional
    copies. The server attaches the event loop (so a stalled stdout is resumed when it
    drains), reads the drop counters for `/metrics` and closes everything at exit within a
    deadline."""

    __slots__ = ("files", "stdout", "vector")

    def __init__(self, stdout: LineWriter, files: AppFileHandler | None = None,
                 vector: VectorSink | None = None) -> None:
        self.stdout = stdout
        self.files = files
        self.vector = vector

    def dropped(self) -> list[tuple[tuple[str], float]]:
        """`((destination,), lines dropped)` per configured destination (metrics source)."""
        counts: list[tuple[tuple[str], float]] = [(("stdout",), float(self.stdout.dropped))]
        if self.files is not None:
            counts.append((("file",), float(self.files.dropped)))
        if self.vector is not None:
            counts.append((("vector",), float(self.vector.dropped)))
        return counts

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stdout.attach(loop)

    def detach(self) -> None:
        self.stdout.detach()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Write what stdout still holds within `timeout`, then close every destination."""
        self.stdout.close(timeout)
        if self.files is not None:
            self.files.close()
        if self.vector is not None:
            self.vector.close()


_OWNED_LOGGERS = (ROOT_LOGGER, OUTPUT_LOGGER, "asyncio")


def configure_logging(settings: LoggingSettings, level: str | None = None,
                      stream: IO[Any] | None = None, *,
                      stdout: LineWriter | None = None) -> LogOutputs:
    """Install navigator's handlers (replacing earlier ones) and return the destinations.
    `stream` defaults to stdout (fd 1, made non-blocking: see `navigator.ops.logwriter`).
    asyncio's own error reports go to the same console handler rather than to a blocking
    stderr. A reload passes the running `stdout` writer: it is kept (with what it still
    holds for a stalled pipe), while the file and Vector destinations are replaced."""
    root = logging.getLogger(ROOT_LOGGER)
    output = logging.getLogger(OUTPUT_LOGGER)
    for name in _OWNED_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if name != "asyncio" or isinstance(handler, LineHandler):
                logger.removeHandler(handler)
                if not (isinstance(handler, LineHandler) and handler.writer is stdout):
                    handler.close()
    root.setLevel(resolve_level(level))
    root.propagate = False
    json_format = settings.format == "json"
    formatter = JsonFormatter() if json_format else TextFormatter()
    notice = record_notice(formatter)
    if stdout is not None:
        writer = stdout
    elif stream is None:
        writer = FdLineWriter(1, "stdout", notice=notice)
    else:
        writer = writer_for_stream(stream, "stdout", notice)
    console = LineHandler(writer, formatter)
    root.addHandler(console)
    logging.getLogger("asyncio").addHandler(console)
    output.setLevel(logging.INFO)
    output.propagate = True
    files = None
    if settings.file:
        files = AppFileHandler(settings.file, JsonFormatter() if json_format else TextFormatter())
        output.addHandler(files)
    sink = open_vector(settings.vector)
    if sink is not None:
        output.addHandler(VectorHandler(sink))
    name = level if level is not None else os.environ.get("LOG_LEVEL", "")
    if name.strip() and name.strip().lower() not in _LEVELS:
        root.warning("unknown log level %r, using info", name)
    return LogOutputs(writer, files, sink)
