"""Unit tests for navigator.ops.logs: formats, child output, files, Vector, redaction,
access log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from navigator.config.runtime import LoggingSettings, VectorSettings
from navigator.ops.accesslog import AccessLogger, AccessRecord, bare_ip
from navigator.ops.logs import (
    MASK,
    OUTPUT_LOGGER,
    PASSTHROUGH_KEYS,
    AppFileHandler,
    IsoClock,
    VectorSink,
    configure_logging,
    is_structured_line,
    redact_env,
    redact_header,
    redact_url,
    resolve_level,
)
from tests.helpers import wait_until

ACCESS_KEYS = ["@timestamp", "client_ip", "remote_user", "method", "uri", "protocol", "status",
               "body_bytes_sent", "request_id", "request_time", "referer", "user_agent",
               "fly_request_id"]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    for name in ("navigator", OUTPUT_LOGGER, "asyncio"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory path: AF_UNIX socket paths are limited to ~107 bytes."""
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="navlog") as name:
        yield Path(name)


def setup(fmt: str = "text", level: str | None = "info", **kw: object) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format=fmt, **kw), level, stream)  # type: ignore[arg-type]
    return stream


def child(line: str, source: str = "app", stream: str = "stdout") -> None:
    logging.getLogger(OUTPUT_LOGGER).info("%s", line, extra={"source": source, "stream": stream})


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# ------------------------------------------------------------------------------ levels

@pytest.mark.parametrize(("arg", "env", "expected"), [
    ("debug", "", logging.DEBUG),
    ("WARN", "", logging.WARNING),
    ("warning", "debug", logging.WARNING),
    ("error", "", logging.ERROR),
    (None, "debug", logging.DEBUG),
    (None, "", logging.INFO),
    (None, "nonsense", logging.INFO),
])
def test_resolve_level(arg: str | None, env: str, expected: int,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", env)
    assert resolve_level(arg) == expected


def test_unknown_level_is_reported_and_info_used() -> None:
    stream = setup(level="loud")
    assert "unknown log level 'loud', using info" in stream.getvalue()
    logging.getLogger("navigator.x").debug("hidden")
    assert "hidden" not in stream.getvalue()


# ------------------------------------------------------------------------------ text / json

def test_text_format_line_and_extras() -> None:
    stream = setup()
    logging.getLogger("navigator.supervisor").info(
        "started %s", "t1", extra={"port": 4001, "note": "two words", "api_token": "abc"})
    [line] = lines(stream)
    stamp, level, logger, rest = line.split(" ", 3)
    assert abs(parse_ts(stamp) - time.time()) < 60
    assert (level, logger) == ("INFO", "navigator.supervisor")
    assert rest == f'started t1 port=4001 note="two words" api_token={MASK}'


def test_text_format_levels_and_filtering() -> None:
    stream = setup(level="warn")
    log = logging.getLogger("navigator.routing")
    log.info("quiet")
    log.warning("loud")
    log.error("bad")
    assert [line.split(" ")[1] for line in lines(stream)] == ["WARN", "ERROR"]


def test_json_format_fields() -> None:
    stream = setup("json")
    logging.getLogger("navigator.server").info(
        "listening on %s", "http://127.0.0.1:3000",
        extra={"port": 3000, "path": Path("/x"), "db": "postgres://u:pw@h/db"})
    [line] = lines(stream)
    doc = json.loads(line)
    assert list(doc) == ["@timestamp", "level", "logger", "message", "port", "path", "db"]
    assert doc["level"] == "INFO"
    assert doc["logger"] == "navigator.server"
    assert doc["message"] == "listening on http://127.0.0.1:3000"
    assert doc["port"] == 3000
    assert doc["path"] == "/x"
    assert doc["db"] == f"postgres://u:{MASK}@h/db"
    assert abs(parse_ts(doc["@timestamp"]) - time.time()) < 60


def test_json_format_exception() -> None:
    stream = setup("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("navigator.x").exception("failed")
    doc = json.loads(stream.getvalue())
    assert doc["level"] == "ERROR"
    assert "ValueError: boom" in doc["exception"]


def test_configure_twice_replaces_handlers() -> None:
    first = setup()
    second = setup("json")
    logging.getLogger("navigator.x").info("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1


# ------------------------------------------------------------------------------ child output

def test_child_output_text() -> None:
    stream = setup()
    child("hello world")
    child("oops", source="2025/boston", stream="stderr")
    child('{"@timestamp":"x","severity":"INFO"}')  # text mode never passes through
    assert lines(stream) == ["[app.stdout] hello world", "[2025/boston.stderr] oops",
                             '[app.stdout] {"@timestamp":"x","severity":"INFO"}']


def test_child_output_json_shape() -> None:
    stream = setup("json")
    child('line with "quotes"', source="web", stream="stderr")
    doc = json.loads(stream.getvalue())
    assert list(doc) == ["@timestamp", "source", "stream", "message"]
    assert doc["source"] == "web"
    assert doc["stream"] == "stderr"
    assert doc["message"] == 'line with "quotes"'


def test_child_output_json_passthrough() -> None:
    stream = setup("json")
    rails = '{"@timestamp":"2025-01-01T00:00:00.000Z","severity":"INFO","message":"hi"}'
    not_rails = '{"@timestamp":"2025-01-01T00:00:00.000Z","message":"no severity"}'
    child(rails)
    child(not_rails)
    out = lines(stream)
    assert out[0] == rails
    assert json.loads(out[1])["message"] == not_rails


def test_child_output_shown_whatever_the_level() -> None:
    stream = setup(level="error")
    child("still here")
    assert lines(stream) == ["[app.stdout] still here"]


def test_passthrough_keys_are_an_immutable_tuple() -> None:
    assert isinstance(PASSTHROUGH_KEYS, tuple)
    assert PASSTHROUGH_KEYS == ("@timestamp", "severity")


@pytest.mark.parametrize(("line", "expected"), [
    ('{"@timestamp":"t","severity":"INFO"}', True),
    ('  {"severity":"WARN","@timestamp":"t","x":[1]}  ', True),
    ('{"@timestamp":"t"}', False),
    ('{"message":"@timestamp severity"}', False),
    ('{"@timestamp":"t","severity":"INFO"', False),
    ('["@timestamp","severity"]', False),
    ('{"note":"{\\"@timestamp\\":1,\\"severity\\":2}"}', False),
    ("plain text", False),
])
def test_is_structured_line(line: str, expected: bool) -> None:
    assert is_structured_line(line) is expected


def test_is_structured_line_custom_keys() -> None:
    assert is_structured_line('{"time":"t","level":"info"}', ("time", "level"))
    assert not is_structured_line('{"time":"t"}', ("time", "level"))


# ------------------------------------------------------------------------------ files

def test_file_per_app(tmp_path: Path) -> None:
    pattern = str(tmp_path / "logs" / "{{app}}" / "out.log")
    stream = setup(file=pattern)
    child("a1", source="alpha")
    child("b1", source="beta", stream="stderr")
    child("a2", source="alpha")
    logging.getLogger("navigator.server").info("server line")
    assert (tmp_path / "logs/alpha/out.log").read_text() == \
        "[alpha.stdout] a1\n[alpha.stdout] a2\n"
    assert (tmp_path / "logs/beta/out.log").read_text() == "[beta.stderr] b1\n"
    assert len(lines(stream)) == 4  # stdout still gets everything


def test_single_file_json(tmp_path: Path) -> None:
    target = tmp_path / "all.log"
    setup("json", file=str(target))
    child("x", source="alpha")
    child("y", source="beta")
    docs = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(d["source"], d["message"]) for d in docs] == [("alpha", "x"), ("beta", "y")]


def test_unwritable_file_drops_counts_and_warns_once(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    stream = setup(file=str(blocker / "{{app}}.log"))
    child("one")
    child("two")
    warning, *rest = lines(stream)
    assert f"WARN navigator.logs cannot write log file {blocker}/app.log" in warning
    assert rest == ["[app.stdout] one", "[app.stdout] two"]  # stdout unaffected
    [files] = [h for h in logging.getLogger(OUTPUT_LOGGER).handlers
               if isinstance(h, AppFileHandler)]
    assert files.dropped == 2


def test_configure_logging_returns_the_destinations(tmp_path: Path) -> None:
    stream = io.StringIO()
    outputs = configure_logging(LoggingSettings(file=str(tmp_path / "{{app}}.log")), "info",
                                stream)
    child("kept", source="a")
    assert (tmp_path / "a.log").read_text() == "[a.stdout] kept\n"
    assert outputs.dropped() == [(("stdout",), 0.0), (("file",), 0.0)]
    assert outputs.vector is None
    logging.getLogger("asyncio").error("loop trouble")  # asyncio's reports: same console
    assert lines(stream)[-1].endswith("ERROR asyncio loop trouble")


# ------------------------------------------------------------------------------ vector

def listen(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    server.settimeout(5)
    return server


def read_lines(conn: socket.socket, count: int) -> list[str]:
    conn.settimeout(5)
    data = b""
    while data.count(b"\n") < count:
        chunk = conn.recv(65536)
        assert chunk, "vector connection closed early"
        data += chunk
    return data.decode().splitlines()


def test_vector_sink_drops_while_down_then_connects(short_dir: Path) -> None:
    path = short_dir / "v.sock"
    sink = VectorSink(str(path), retry=0.0)
    sink.send(b'{"lost":1}\n')  # nobody listening: dropped and counted
    assert not sink.connected
    assert sink.dropped == 1
    server = listen(path)
    try:
        sink.send(b'{"kept":1}\n')
        conn, _ = server.accept()
        with conn:
            notice, kept = read_lines(conn, 2)
            assert kept == '{"kept":1}'
            doc = json.loads(notice)  # one report line first, as Vector's JSON
            assert (doc["level"], doc["logger"]) == ("WARN", "navigator.logs")
            assert doc["message"] == "dropped 1 log lines: vector was not accepting writes"
            conn.close()
            wait_until(lambda: _send_fails(sink), message="sink notices the closed peer")
    finally:
        sink.close()
        server.close()


def _send_fails(sink: VectorSink) -> bool:
    sink.send(b"{}\n")
    return not sink.connected


def test_vector_retry_interval_limits_connect_attempts(short_dir: Path) -> None:
    path = short_dir / "v.sock"
    sink = VectorSink(str(path), retry=3600.0)
    sink.send(b"{}\n")
    server = listen(path)
    try:
        sink.send(b"{}\n")  # within the retry interval: no new attempt
        assert not sink.connected
    finally:
        sink.close()
        server.close()


def test_vector_handler_gets_child_output_with_tenant(short_dir: Path) -> None:
    path = short_dir / "v.sock"
    server = listen(path)
    try:
        stream = setup(vector=VectorSettings(enabled=True, socket=str(path)))
        child("hello", source="t1")
        rails = '{"@timestamp":"t","severity":"INFO"}'
        child(rails, source="t1")
        logging.getLogger("navigator.server").info("not for vector")
        conn, _ = server.accept()
        with conn:
            first, second = read_lines(conn, 2)
        doc = json.loads(first)
        assert (doc["source"], doc["stream"], doc["message"], doc["tenant"]) == \
            ("t1", "stdout", "hello", "t1")
        assert second == rails
        assert lines(stream)[0] == "[t1.stdout] hello"  # stdout keeps the text format
    finally:
        server.close()


# ------------------------------------------------------------------------------ redaction

@pytest.mark.parametrize(("key", "value", "expected"), [
    ("DATABASE_PASSWORD", "hunter2", MASK),
    ("secret_key_base", "abc", MASK),
    ("GITHUB_TOKEN", "ghp_x", MASK),
    ("AWS_ACCESS_KEY_ID", "AKIA", MASK),
    ("GOOGLE_CREDENTIALS", "{}", MASK),
    ("HTTP_AUTH", "u:p", MASK),
    ("API_TOKEN", "", ""),
    ("DATABASE_URL", "postgres://u:pw@h:5432/db", f"postgres://u:{MASK}@h:5432/db"),
    ("REDIS_URL", "redis://:pw@cache:6379", f"redis://:{MASK}@cache:6379"),
    ("GIT_REMOTE", "https://ghp_abc@github.com/x", f"https://{MASK}@github.com/x"),
    ("RAILS_ENV", "production", "production"),
    ("PORT", "4000", "4000"),
    ("MAILTO", "someone@example.com", "someone@example.com"),
])
def test_redact_env(key: str, value: str, expected: str) -> None:
    assert redact_env({key: value}) == {key: expected}


def test_redact_url_password_with_at_sign() -> None:
    assert redact_url("x postgres://u:p@ss@h/db y") == f"x postgres://u:{MASK}@h/db y"


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("Authorization", "Basic dXNlcjpwdw==", f"Basic {MASK}"),
    ("authorization", "sekrit", MASK),
    ("Proxy-Authorization", "Bearer abc", f"Bearer {MASK}"),
    ("Cookie", "session=abc; theme=dark", f"session={MASK}; theme={MASK}"),
    ("Set-Cookie", "sid=1; Path=/", f"sid={MASK}; Path={MASK}"),
    ("Referer", "https://u:pw@example.com/", f"https://u:{MASK}@example.com/"),
    ("User-Agent", "curl/8", "curl/8"),
])
def test_redact_header(name: str, value: str, expected: str) -> None:
    assert redact_header(name, value) == expected


# ------------------------------------------------------------------------------ timestamps

def test_iso_clock_round_trip_and_cache() -> None:
    clock = IsoClock()
    for ts in (1_700_000_000.0, 1_700_000_000.999, 1_700_000_001.5, 1_700_000_000.25):
        text = clock.format(ts)
        assert len(text.split("T")[1].split(".")[1]) in (4, 9)  # "123Z" or "123+05:30"
        assert abs(parse_ts(text) - ts) < 0.001


def test_iso_clock_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setenv("TZ", "Asia/Kolkata")
        time.tzset()
        assert IsoClock().format(1_700_000_000.123) == "2023-11-15T03:43:20.123+05:30"
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert IsoClock().format(1_700_000_000.123) == "2023-11-14T22:13:20.123Z"
    finally:
        monkeypatch.undo()
        time.tzset()


# ------------------------------------------------------------------------------ access log

class FakeTimer:
    def __init__(self, loop: FakeLoop, callback: Callable[[], object]) -> None:
        self.loop = loop
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Records call_later timers so a test can fire them."""

    def __init__(self) -> None:
        self.timers: list[FakeTimer] = []

    def call_later(self, delay: float, callback: Callable[[], object], /) -> FakeTimer:
        timer = FakeTimer(self, callback)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]

    def fire(self) -> None:
        for timer in self.pending():
            timer.cancelled = True
            timer.callback()


def entry(**kw: object) -> AccessRecord:
    base: dict[str, object] = {
        "timestamp": 1_700_000_000.5, "client_ip": "203.0.113.9", "method": "GET",
        "uri": "/a?b=1", "protocol": "HTTP/1.1", "status": 200, "body_bytes_sent": 12,
        "request_id": "rid", "request_time": 0.0123, "referer": "https://r/",
        "user_agent": "curl/8", "fly_request_id": "fly1",
    }
    base.update(kw)
    return AccessRecord(**base)  # type: ignore[arg-type]


def access_doc(logger: AccessLogger, e: AccessRecord) -> dict[str, object]:
    line = logger.format(e)
    assert b"\n" not in line
    doc: dict[str, object] = json.loads(line)
    return doc


@pytest.mark.parametrize(("extra", "optional"), [
    ({}, {}),
    ({"tenant": "2025/boston", "response_type": "proxy", "proxy_backend": "tenant:2025/boston"},
     {"tenant": "2025/boston", "response_type": "proxy", "proxy_backend": "tenant:2025/boston"}),
    ({"response_type": "static", "file_path": "/srv/public/a.css"},
     {"response_type": "static", "file_path": "/srv/public/a.css"}),
    ({"response_type": "redirect", "status": 302, "destination": "/b/"},
     {"response_type": "redirect", "destination": "/b/"}),
    ({"response_type": "fly-replay", "status": 307, "destination": "app=other"},
     {"response_type": "fly-replay", "destination": "app=other"}),
    ({"response_type": "error", "status": 502, "tenant": "t",
      "error_message": 'backend "t" refused'},
     {"tenant": "t", "response_type": "error", "error_message": 'backend "t" refused'}),
    ({"response_type": "auth-failure", "status": 401, "destination": "", "file_path": ""},
     {"response_type": "auth-failure"}),
])
def test_access_line_keys_and_values(extra: dict[str, object],
                                     optional: dict[str, object]) -> None:
    logger = AccessLogger(io.BytesIO(), True)
    doc = access_doc(logger, entry(**extra))
    order = ["tenant", "response_type", "destination", "proxy_backend", "file_path",
             "error_message"]
    assert list(doc) == ACCESS_KEYS + [k for k in order if k in optional]
    assert abs(parse_ts(str(doc["@timestamp"])) - 1_700_000_000.5) < 0.001
    assert doc["client_ip"] == "203.0.113.9"
    assert doc["remote_user"] == "-"
    assert (doc["method"], doc["uri"], doc["protocol"]) == ("GET", "/a?b=1", "HTTP/1.1")
    assert doc["status"] == extra.get("status", 200)
    assert doc["body_bytes_sent"] == 12
    assert doc["request_id"] == "rid"
    assert doc["request_time"] == "0.012"
    assert (doc["referer"], doc["user_agent"], doc["fly_request_id"]) == \
        ("https://r/", "curl/8", "fly1")
    assert {k: doc[k] for k in optional} == optional


def test_access_line_remote_user_and_escaping() -> None:
    logger = AccessLogger(io.BytesIO(), True)
    doc = access_doc(logger, entry(remote_user="alice", user_agent='x"y\\z\n\u00e9',
                                   request_time=1.0, referer=""))
    assert doc["remote_user"] == "alice"
    assert doc["user_agent"] == 'x"y\\z\n\u00e9'
    assert doc["request_time"] == "1.000"
    assert doc["referer"] == ""


@pytest.mark.parametrize(("raw", "expected"), [
    ("203.0.113.9", "203.0.113.9"),
    ("203.0.113.9:5123", "203.0.113.9"),
    ("1.2.3.4, 10.0.0.1", "1.2.3.4"),
    (" 1.2.3.4 ,5.6.7.8", "1.2.3.4"),
    ("::1", "::1"),
    ("[::1]:8080", "::1"),
    ("2001:db8::1, 10.0.0.1", "2001:db8::1"),
    ("", ""),
])
def test_bare_ip(raw: str, expected: str) -> None:
    assert bare_ip(raw) == expected
    assert access_doc(AccessLogger(io.BytesIO(), True), entry(client_ip=raw))["client_ip"] \
        == expected


def test_access_buffering_with_fake_loop() -> None:
    out = io.BytesIO()
    loop = FakeLoop()
    logger = AccessLogger(out, True, loop=loop)
    logger.log(entry(uri="/1"))
    logger.log(entry(uri="/2"))
    assert out.getvalue() == b""
    assert len(loop.pending()) == 1  # one timer per batch
    loop.fire()
    assert [json.loads(x)["uri"] for x in out.getvalue().splitlines()] == ["/1", "/2"]
    logger.log(entry(uri="/3"))
    assert len(loop.pending()) == 1
    logger.flush()  # shutdown path
    assert loop.pending() == []
    assert [json.loads(x)["uri"] for x in out.getvalue().splitlines()] == ["/1", "/2", "/3"]
    logger.flush()  # nothing left: no-op
    assert len(out.getvalue().splitlines()) == 3


def test_access_flushes_when_buffer_is_full() -> None:
    out = io.BytesIO()
    loop = FakeLoop()
    logger = AccessLogger(out, True, loop=loop, flush_bytes=600)
    count = 0
    while not out.getvalue():
        logger.log(entry(uri=f"/{count}"))
        count += 1
        assert count < 100
    assert count > 1
    assert loop.pending() == []  # the size flush cancelled the timer
    assert len(out.getvalue().splitlines()) == count


def test_access_without_loop_writes_through() -> None:
    out = io.StringIO()
    logger = AccessLogger(out, True)
    logger.log(entry())
    assert json.loads(out.getvalue())["uri"] == "/a?b=1"
    assert out.getvalue().endswith("\n")


class SignallingBytes(io.BytesIO):
    """A stream that sets an asyncio.Event when written to."""

    def __init__(self, written: asyncio.Event) -> None:
        super().__init__()
        self.written = written

    def write(self, data: bytes, /) -> int:  # type: ignore[override]
        self.written.set()
        return super().write(data)


def test_access_with_real_loop_flushes_on_timer() -> None:
    async def run() -> bytes:
        out = SignallingBytes(asyncio.Event())
        logger = AccessLogger(out, True, flush_delay=0.01)
        logger.log(entry())
        assert out.getvalue() == b""  # buffered until the loop timer fires
        await asyncio.wait_for(out.written.wait(), 5)
        return out.getvalue()

    assert json.loads(asyncio.run(run()))["status"] == 200


def test_access_disabled_writes_nothing() -> None:
    out = io.BytesIO()
    logger = AccessLogger(out, False, loop=FakeLoop())
    logger.log(entry())
    logger.flush()
    assert out.getvalue() == b""


def test_access_to_vector_even_when_stdout_disabled(short_dir: Path) -> None:
    path = short_dir / "v.sock"
    server = listen(path)
    try:
        out = io.BytesIO()
        sink = VectorSink(str(path))
        logger = AccessLogger(out, False, sink, loop=FakeLoop())
        logger.log(entry(uri="/v"))
        logger.close()
        sink.close()
        conn, _ = server.accept()
        with conn:
            [line] = read_lines(conn, 1)
        assert json.loads(line)["uri"] == "/v"
        assert out.getvalue() == b""
    finally:
        server.close()
