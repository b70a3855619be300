"""The access log through the real server: one JSON line per request for every kind of answer
(reference section 16), matched to its request by the X-Request-Id the test sends; the server's
own lines as text or JSON; nothing at all when the access log is off.

The access log is buffered (~50 ms), so lines are waited for, never slept for. The tests at
the end pin defects this file found (each was a strict xfail until fixed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import signal
import socket
import struct
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    Response,
    connect,
    pattern_bytes,
    raw_exchange,
    request,
    run_backend_app,
    run_navigator,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.timeout(90)

STOPPED = {"json": '"logger":"navigator.server","message":"stopped"}',
           "text": " INFO navigator.server stopped"}  # the server's last line
# Always present, in this order; then the optional keys, in this order, only when non-empty.
FIXED_KEYS = ("@timestamp", "client_ip", "remote_user", "method", "uri", "protocol", "status",
              "body_bytes_sent", "request_id", "request_time", "referer", "user_agent",
              "fly_request_id")
OPTIONAL_KEYS = ("tenant", "response_type", "destination", "proxy_backend", "file_path",
                 "error_message")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
REQUEST_TIME = re.compile(r"^\d+\.\d{3}$")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) "
                       r"(DEBUG|INFO|WARN|ERROR) navigator\.\S+ ")
# What a request carries unless a test says otherwise (helpers.request sends no UA/Referer).
DEFAULTS: dict[str, object] = {
    "client_ip": "127.0.0.1", "remote_user": "-", "method": "GET", "protocol": "HTTP/1.1",
    "referer": "", "user_agent": "", "fly_request_id": "",
}
STATIC_BODY = b"static body " * 100
CREDENTIALS = "Basic " + base64.b64encode(b"sam:secret").decode()
WRONG_CREDENTIALS = "Basic " + base64.b64encode(b"sam:nope").decode()


def new_id() -> str:
    return f"t-{uuid.uuid4().hex}"


def parse_access(line: str) -> dict[str, object] | None:
    """The access-log object on `line`, or None for anything else (server or tenant output)."""
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "client_ip" in doc else None


def access_lines(nav: Navigator) -> list[dict[str, object]]:
    with nav._lock:
        lines = list(nav.lines)
    return [doc for doc in map(parse_access, lines) if doc is not None]


def access_line(nav: Navigator, key: str, value: object,
                timeout: float = 10.0) -> dict[str, object]:
    """The one access line whose `key` is `value` (normally the request id), once it is out."""

    def found() -> list[dict[str, object]]:
        return [doc for doc in access_lines(nav) if doc.get(key) == value]

    matches = wait_until(found, timeout, message=f"an access line with {key}={value!r}")
    assert isinstance(matches, list)
    assert len(matches) == 1, f"one access line per request, got {matches}"
    return matches[0]


def check_shape(line: dict[str, object]) -> None:
    """Key order and value formats every access line shares."""
    keys = list(line)
    assert tuple(keys[:len(FIXED_KEYS)]) == FIXED_KEYS, keys
    optional = keys[len(FIXED_KEYS):]
    assert optional == [k for k in OPTIONAL_KEYS if k in optional], f"order: {optional}"
    for key in optional:
        assert line[key] not in ("", None), f"empty optional key {key!r} present: {line}"
    assert ISO_TIME.match(str(line["@timestamp"])), line["@timestamp"]
    assert isinstance(line["request_time"], str)
    assert REQUEST_TIME.match(line["request_time"]), line["request_time"]
    assert isinstance(line["status"], int)
    assert isinstance(line["body_bytes_sent"], int)


def check(line: dict[str, object], **expected: object) -> None:
    """Shape, then every field in DEFAULTS + `expected`; an optional key expected as None
    must be absent."""
    check_shape(line)
    want = {**DEFAULTS, **expected}
    got = {key: line.get(key) for key in want}
    assert got == want, f"full line: {line}"


def tenant_fields(name: str) -> dict[str, object]:
    return {"tenant": name, "response_type": "proxy", "destination": f"tenant:{name}",
            "proxy_backend": f"tenant:{name}", "file_path": None, "error_message": None}


NO_TENANT: dict[str, object] = {"tenant": None, "proxy_backend": None, "file_path": None,
                                "error_message": None}


def echoed_headers(resp: Response) -> dict[str, str]:
    return {k.lower(): v for k, v in json.loads(resp.body)["headers"]}


# --- the server ---------------------------------------------------------------------------------
@dataclass
class Site:
    nav: Navigator
    backend: int  # port of the reverse-proxy target


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    """backend_app on its own port, the target of the reverse-proxy route."""
    with run_backend_app() as port:
        yield port


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, backend: int) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("access")
    (root / "public" / "pub").mkdir(parents=True)
    (root / "public" / "pub" / "a.txt").write_bytes(STATIC_BODY)
    sha = base64.b64encode(hashlib.sha1(b"secret").digest()).decode()
    (root / "htpasswd").write_text(f"sam:{{SHA}}{sha}\n")
    text = f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  trust_proxy: true
  health_check:
    path: /up
    response:
      status: 200
      body: "healthy"
  static:
    public_dir: {root}/public
auth:
  enabled: true
  realm: Team
  htpasswd: {root}/htpasswd
  public_paths: ["/pub/", "/up", "/r/", "/old/", "/api/", "/replay/", "/nowhere/", "/b/",
                 "/crash1/", "/crash2/", "/slow/", "/wait/"]
routes:
  redirects:
    - from: "^/r/(.*)$"
      to: "/b/$1"
  rewrites:
    - from: "^/old/(.*)$"
      to: "/b/$1"
  reverse_proxies:
    - name: api
      prefix: /api/
      target: http://127.0.0.1:{backend}
      strip_path: true
      websocket: true
  fly:
    replay:
      - path: "^/replay/"
        region: ams
logging:
  format: text
  access_log: true
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /a/
    - path: /b/
    - path: /crash1/
    - path: /crash2/
    - path: /slow/
      startup_timeout: 300ms
      env:
        START_DELAY: "5"
    - path: /wait/
      startup_timeout: 30s
      env:
        START_DELAY: "5"
"""
    # This machine is in iad, so the replay rule for ams is not local.
    with run_navigator(write_config(root, text), env={"FLY_REGION": "iad"}) as nav:
        yield Site(nav, backend)


# --- one line per kind of answer ----------------------------------------------------------------
def test_proxy_to_tenant(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/b/echo?q=1&r=two", headers={
        "X-Request-Id": rid, "Referer": "https://example.test/from", "User-Agent": "probe/1.0",
        "Fly-Request-Id": "01FLYREQ-1"}, timeout=20)
    assert resp.status == 200
    assert echoed_headers(resp)["x-request-id"] == rid  # the tenant saw the same id
    check(access_line(site.nav, "request_id", rid), uri="/b/echo?q=1&r=two", status=200,
          body_bytes_sent=len(resp.body), referer="https://example.test/from",
          user_agent="probe/1.0", fly_request_id="01FLYREQ-1", **tenant_fields("b"))


def test_generated_request_id_is_the_one_the_tenant_saw(site: Site) -> None:
    resp = request(site.nav.port, "POST", "/b/echo", body=b"hello", timeout=20)
    rid = echoed_headers(resp)["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
    check(access_line(site.nav, "request_id", rid), method="POST", uri="/b/echo", status=200,
          body_bytes_sent=len(resp.body), **tenant_fields("b"))


@pytest.mark.parametrize("path", ["/b/bytes?n=300000", "/b/chunked?n=70001", "/b/close?n=5000"])
def test_body_bytes_sent_is_exact_for_streamed_bodies(site: Site, path: str) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", path, headers={"X-Request-Id": rid}, timeout=20)
    n = int(path.rpartition("=")[2])
    assert resp.body == pattern_bytes(n)
    check(access_line(site.nav, "request_id", rid), uri=path, status=200, body_bytes_sent=n,
          **tenant_fields("b"))


def test_http_1_0_request(site: Site) -> None:
    rid = new_id()
    answer = raw_exchange(site.nav.port, f"GET /b/x HTTP/1.0\r\nX-Request-Id: {rid}\r\n\r\n"
                          .encode(), timeout=20)
    assert answer.startswith(b"HTTP/1.1 200")
    body = answer.partition(b"\r\n\r\n")[2]
    check(access_line(site.nav, "request_id", rid), uri="/b/x", protocol="HTTP/1.0",
          status=200, body_bytes_sent=len(body), **tenant_fields("b"))


@pytest.mark.parametrize(("headers", "client_ip"), [
    ({}, "127.0.0.1"),
    ({"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"),
    ({"X-Forwarded-For": "203.0.113.9:4711, 10.0.0.1"}, "203.0.113.9"),
    ({"X-Forwarded-For": "[2001:db8::1]:443, 10.0.0.1"}, "2001:db8::1"),
    ({"X-Forwarded-For": "2001:db8::2"}, "2001:db8::2"),
    # trust_proxy is on here: Fly's edge address wins over what the client wrote
    ({"X-Forwarded-For": "203.0.113.9", "Fly-Client-IP": "198.51.100.7"}, "198.51.100.7"),
    ({"X-Forwarded-For": "203.0.113.9", "Fly-Client-IP": "not-an-ip"}, "203.0.113.9"),
])
def test_health_check_and_client_ip(site: Site, headers: dict[str, str],
                                    client_ip: str) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/up", headers={"X-Request-Id": rid, **headers})
    assert (resp.status, resp.body) == (200, b"healthy")
    check(access_line(site.nav, "request_id", rid), client_ip=client_ip, uri="/up", status=200,
          body_bytes_sent=7, response_type="health", destination=None, **NO_TENANT)


def test_auth_failure_then_success(site: Site) -> None:
    nav = site.nav
    denied, wrong, ok = new_id(), new_id(), new_id()
    resp = request(nav.port, "GET", "/a/x?k=1", headers={"X-Request-Id": denied})
    assert resp.status == 401
    check(access_line(nav, "request_id", denied), uri="/a/x?k=1", status=401,
          body_bytes_sent=len(resp.body), response_type="auth-failure", destination=None,
          **NO_TENANT)
    resp = request(nav.port, "GET", "/a/x", headers={"X-Request-Id": wrong,
                                                      "Authorization": WRONG_CREDENTIALS})
    assert resp.status == 401
    check(access_line(nav, "request_id", wrong), uri="/a/x", status=401,
          body_bytes_sent=len(resp.body), response_type="auth-failure", destination=None,
          **NO_TENANT)
    # A verified Basic user wins over an X-Remote-User header.
    resp = request(nav.port, "GET", "/a/x", headers={
        "X-Request-Id": ok, "Authorization": CREDENTIALS, "X-Remote-User": "mallory"},
        timeout=20)
    assert resp.status == 200
    check(access_line(nav, "request_id", ok), remote_user="sam", uri="/a/x", status=200,
          body_bytes_sent=len(resp.body), **tenant_fields("a"))


def test_remote_user_from_header_without_basic_auth(site: Site) -> None:
    """Reference section 16: Basic-auth user, else X-Remote-User, else '-'."""
    rid = new_id()
    resp = request(site.nav.port, "GET", "/b/x", headers={"X-Request-Id": rid,
                                                           "X-Remote-User": "bob"}, timeout=20)
    check(access_line(site.nav, "request_id", rid), remote_user="bob", uri="/b/x", status=200,
          body_bytes_sent=len(resp.body), **tenant_fields("b"))


def test_static_file(site: Site) -> None:
    nav = site.nav
    whole, head, part, cached = new_id(), new_id(), new_id(), new_id()
    resp = request(nav.port, "GET", "/pub/a.txt?v=3", headers={"X-Request-Id": whole})
    assert resp.body == STATIC_BODY
    static = {"response_type": "static", "destination": None, "tenant": None,
              "proxy_backend": None, "error_message": None}
    check(access_line(nav, "request_id", whole), uri="/pub/a.txt?v=3", status=200,
          body_bytes_sent=len(STATIC_BODY), **static)
    request(nav.port, "HEAD", "/pub/a.txt", headers={"X-Request-Id": head})
    check(access_line(nav, "request_id", head), method="HEAD", uri="/pub/a.txt", status=200,
          body_bytes_sent=0, **static)
    resp = request(nav.port, "GET", "/pub/a.txt", headers={"X-Request-Id": part,
                                                            "Range": "bytes=7-10"})
    assert resp.status == 206
    check(access_line(nav, "request_id", part), uri="/pub/a.txt", status=206,
          body_bytes_sent=4, **static)
    etag = request(nav.port, "GET", "/pub/a.txt").header("etag")
    assert etag
    resp = request(nav.port, "GET", "/pub/a.txt", headers={"X-Request-Id": cached,
                                                            "If-None-Match": etag})
    assert resp.status == 304
    check(access_line(nav, "request_id", cached), uri="/pub/a.txt", status=304,
          body_bytes_sent=0, **static)


def test_redirect(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/r/x?y=1", headers={"X-Request-Id": rid})
    assert (resp.status, resp.header("location")) == (302, "/b/x?y=1")
    check(access_line(site.nav, "request_id", rid), uri="/r/x?y=1", status=302,
          body_bytes_sent=len(resp.body), response_type="redirect", destination=None,
          **NO_TENANT)


def test_reverse_proxy(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "POST", "/api/echo?k=v", body=b"x" * 1000,
                   headers={"X-Request-Id": rid})
    assert json.loads(resp.body)["target"] == "/echo?k=v"
    assert echoed_headers(resp)["x-request-id"] == rid
    check(access_line(site.nav, "request_id", rid), method="POST", uri="/api/echo?k=v",
          status=200, body_bytes_sent=len(resp.body), response_type="proxy",
          destination=f"http://127.0.0.1:{site.backend}", **NO_TENANT)


def test_fly_replay(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/replay/x?z=9", headers={"X-Request-Id": rid})
    assert resp.status == 307
    assert resp.header("content-type") == "application/vnd.fly.replay+json"
    assert json.loads(resp.body)["region"] == "ams"
    line = access_line(site.nav, "request_id", rid)
    check(line, uri="/replay/x?z=9", status=307, body_bytes_sent=len(resp.body),
          response_type="fly-replay", **NO_TENANT)


def test_not_found(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/nowhere/x", headers={"X-Request-Id": rid})
    assert resp.status == 404
    check(access_line(site.nav, "request_id", rid), uri="/nowhere/x", status=404,
          body_bytes_sent=len(resp.body), response_type="error", destination=None, **NO_TENANT)


def test_startup_timeout_maintenance_page(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/slow/x", headers={"X-Request-Id": rid}, timeout=20)
    assert resp.status == 503
    check(access_line(site.nav, "request_id", rid), uri="/slow/x", status=503,
          body_bytes_sent=len(resp.body),
          **{**tenant_fields("slow"), "response_type": "maintenance",
             "error_message": "startup timeout"})


def test_backend_failure_names_the_error(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/crash1/exit", headers={"X-Request-Id": rid},
                   timeout=20)
    assert resp.status == 502
    line = access_line(site.nav, "request_id", rid)
    assert line.get("error_message"), f"a 502 says why: {line}"
    # body_bytes_sent of error pages: test_error_page_body_bytes_are_counted.
    check(line, uri="/crash1/exit", status=502,
          **{**tenant_fields("crash1"), "error_message": line.get("error_message")})


def test_client_gone_while_tenant_starts(site: Site) -> None:
    rid = new_id()
    sock = connect(site.nav.port)
    sock.sendall(f"GET /wait/x HTTP/1.1\r\nHost: t\r\nX-Request-Id: {rid}\r\n\r\n".encode())
    site.nav.wait_for_output(r"tenant wait starting")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, not a half-close: the client is gone
    line = access_line(site.nav, "request_id", rid)
    # response_type stays "proxy" (the route was chosen); "client_closed" is only for
    # requests that had no response type yet.
    check(line, uri="/wait/x", status=499, body_bytes_sent=0, **tenant_fields("wait"))


@pytest.mark.parametrize("via", ["tenant", "reverse_proxy"])
def test_websocket(site: Site, via: str) -> None:
    rid = new_id()
    path = "/b/ws" if via == "tenant" else "/api/ws"
    with connect(site.nav.port, timeout=20) as sock:
        reader = Reader(sock)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                     "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     f"Sec-WebSocket-Version: 13\r\nX-Request-Id: {rid}\r\n\r\n".encode())
        assert reader.response().status == 101
        sock.sendall(b"through the tunnel")
        assert reader.read_exactly(18) == b"through the tunnel"
    line = access_line(site.nav, "request_id", rid)
    where = (tenant_fields("b") if via == "tenant"
             else {**NO_TENANT, "destination": f"http://127.0.0.1:{site.backend}"})
    check(line, uri=path, status=101, body_bytes_sent=0,
          **{**where, "response_type": "websocket"})


def test_text_format_server_lines(site: Site) -> None:
    """`logging.format: text`: server lines are `time LEVEL logger message`, tenant output is
    `[name.stream] line`, and access lines stay JSON objects."""
    nav = site.nav
    request(nav.port, "GET", "/b/x", timeout=20)
    listening = nav.wait_for_output(r"listening on http://").string
    assert TEXT_LINE.match(listening), listening
    assert "INFO navigator.server navigator listening on http://127.0.0.1:" in listening
    nav.wait_for_output(r"^\[b\.stdout\] ready \d+$")
    wait_until(lambda: access_lines(nav), message="an access line")
    with nav._lock:
        lines = list(nav.lines)
    for line in lines:
        if line.startswith("{"):
            assert parse_access(line) is not None, f"only access lines are JSON here: {line}"


# --- formats and switching the access log off -----------------------------------------------------
def small_config(root: Path, more: str) -> Path:
    """One tenant; `more` goes right after the server keys (more of them, or `logging:`)."""
    return write_config(root, f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  trust_proxy: false
{more}
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {random.randrange(20000, 32000, 101)}
  tenants:
    - path: /b/
""")


def json_lines(nav: Navigator) -> list[dict[str, object]]:
    """Every line parsed: with `format: json` there is nothing else on stdout."""
    docs = []
    for line in nav.lines:
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        docs.append(doc)
    return docs


def test_json_format_server_lines_and_access_lines(tmp_path: Path) -> None:
    config = small_config(tmp_path, "logging:\n  format: json")
    rids = [new_id() for _ in range(3)]
    with run_navigator(config) as nav:
        port = nav.port
        ok = request(port, "GET", "/b/x?q=1", headers={
            "X-Request-Id": rids[0], "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
            "Fly-Client-IP": "198.51.100.7"}, timeout=20)
        missing = request(port, "GET", "/nowhere", headers={"X-Request-Id": rids[1]})
        request(port, "GET", "/b/y", headers={"X-Request-Id": rids[2]})
        access_line(nav, "request_id", rids[2])
    assert nav.lines[-1].endswith(STOPPED["json"])  # all of its output is here
    docs = json_lines(nav)
    server = [d for d in docs if "level" in d]
    listening = next(d for d in server if "listening on" in str(d["message"]))
    assert list(listening) == ["@timestamp", "level", "logger", "message"]
    assert (listening["level"], listening["logger"]) == ("INFO", "navigator.server")
    assert listening["message"] == f"navigator listening on http://127.0.0.1:{port}"
    assert ISO_TIME.match(str(listening["@timestamp"]))
    child = next(d for d in docs if d.get("source") == "b")
    assert list(child) == ["@timestamp", "source", "stream", "message"]
    assert child["stream"] == "stdout"
    assert re.fullmatch(r"ready \d+", str(child["message"]))
    # Access lines are not wrapped into server lines, and there is one per request.
    assert not any("client_ip" in d or "request_id" in str(d.get("message", "")) for d in server)
    access = [d for d in docs if "client_ip" in d]
    assert sorted(str(d["request_id"]) for d in access) == sorted(rids)
    by_id = {d["request_id"]: d for d in access}
    # trust_proxy is off: neither Fly-Client-IP nor X-Forwarded-For is believed (issue 22).
    check(by_id[rids[0]], client_ip="127.0.0.1", uri="/b/x?q=1", status=200,
          body_bytes_sent=len(ok.body), **tenant_fields("b"))
    check(by_id[rids[1]], uri="/nowhere", status=404, body_bytes_sent=len(missing.body),
          response_type="error", destination=None, **NO_TENANT)


@pytest.mark.parametrize(("fmt", "where"), [("json", "logging"), ("text", "server")])
def test_access_log_off_prints_no_access_lines(tmp_path: Path, fmt: str, where: str) -> None:
    """Off by `logging.access_log: false` or by `server.access_log: false`."""
    if where == "logging":
        config = small_config(tmp_path, f"logging:\n  format: {fmt}\n  access_log: false")
    else:
        config = small_config(tmp_path, f"  access_log: false\nlogging:\n  format: {fmt}")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/b/x", headers={"X-Request-Id": new_id()},
                       timeout=20).status == 200
        assert request(nav.port, "GET", "/nowhere").status == 404
    # Stopped: the access log is flushed before "stopped", so an access line would be here.
    assert nav.lines[-1].endswith(STOPPED[fmt]), nav.lines[-1]
    assert access_lines(nav) == []
    if fmt == "json":
        assert all(json_lines(nav))
    else:
        assert not any(line.startswith("{") for line in nav.lines)


@pytest.mark.parametrize("where", ["logging", "server"])
def test_access_log_to_a_file(tmp_path: Path, where: str) -> None:
    """`access_log: <path>` (older reference versions): lines land in that file, appended,
    directories created, and not on stdout."""
    target = tmp_path / "logs" / "access.log"
    more = (f"logging:\n  access_log: {target}" if where == "logging"
            else "  access_log: logs/access.log")
    config = small_config(tmp_path, more)
    rid = new_id()
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/b/x?q=1", headers={"X-Request-Id": rid},
                       timeout=20).status == 200

        def logged() -> list[dict[str, object]]:
            lines = target.read_text().splitlines() if target.exists() else []
            return [doc for doc in map(parse_access, lines) if doc is not None]

        wait_until(logged, timeout=10, message="an access line in the file")
        check(logged()[0], request_id=rid, uri="/b/x?q=1", status=200, **tenant_fields("b"))
    assert nav.lines[-1].endswith(STOPPED["text"]), nav.lines[-1]
    assert access_lines(nav) == []  # nothing on stdout
    assert len(logged()) == 1


def test_reload_applies_logging_changes(tmp_path: Path) -> None:
    """A reload that changes `logging` takes effect like every other key: the access log
    turned on, then moved to a file; navigator's own lines switch to JSON. The reference
    re-applies logging on reload; before, all of this waited for a restart."""
    config = small_config(tmp_path, "logging:\n  access_log: false")
    target = tmp_path / "access.log"
    with run_navigator(config) as nav:
        first, second, third = new_id(), new_id(), new_id()
        assert request(nav.port, "GET", "/b/one", headers={"X-Request-Id": first},
                       timeout=20).status == 200
        config.write_text(config.read_text().replace(
            "  access_log: false", "  access_log: true\n  format: json"))
        nav.process.send_signal(signal.SIGHUP)
        nav.wait_for_output(r"configuration reloaded")
        assert request(nav.port, "GET", "/b/two", headers={"X-Request-Id": second},
                       timeout=20).status == 200
        access_line(nav, "request_id", second)  # on stdout now
        nav.wait_for_output(r'"message":"configuration reloaded')  # own lines in JSON
        config.write_text(config.read_text().replace("  access_log: true",
                                                     f"  access_log: {target}"))
        nav.process.send_signal(signal.SIGHUP)
        nav.wait_for_output(r"logging reconfigured \(format json, access log " + str(target))

        def in_file() -> list[dict[str, object]]:
            lines = target.read_text().splitlines() if target.exists() else []
            return [doc for doc in map(parse_access, lines) if doc is not None]

        assert request(nav.port, "GET", "/b/three", headers={"X-Request-Id": third},
                       timeout=20).status == 200
        wait_until(in_file, timeout=10, message="an access line in the file")
    ids = [doc["request_id"] for doc in access_lines(nav)]
    assert first not in ids  # logged while the access log was off
    assert ids.count(second) == 1
    assert third not in ids  # went to the file
    assert [doc["request_id"] for doc in in_file()] == [third]


# --- defects this file found, fixed -------------------------------------------------------------
def test_uri_is_the_path_after_rewrites(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/old/echo?z=2", headers={"X-Request-Id": rid},
                   timeout=20)
    assert json.loads(resp.body)["target"] == "/b/echo?z=2"  # the rewrite happened
    check(access_line(site.nav, "request_id", rid), uri="/b/echo?z=2", status=200,
          body_bytes_sent=len(resp.body), **tenant_fields("b"))


def test_error_page_body_bytes_are_counted(site: Site) -> None:
    rid = new_id()
    resp = request(site.nav.port, "GET", "/crash2/exit", headers={"X-Request-Id": rid},
                   timeout=20)
    assert (resp.status, resp.body) == (502, b"Bad Gateway")
    line = access_line(site.nav, "request_id", rid)
    assert line["body_bytes_sent"] == len(resp.body), line


def test_static_line_names_the_file(site: Site) -> None:
    rid = new_id()
    request(site.nav.port, "GET", "/pub/a.txt", headers={"X-Request-Id": rid})
    line = access_line(site.nav, "request_id", rid)
    assert str(line.get("file_path", "")).endswith("/public/pub/a.txt"), line


def test_malformed_request_is_logged(site: Site) -> None:
    path = f"/b/{new_id()}"
    answer = raw_exchange(site.nav.port, f"GET {path} HTTP/1.1\r\n\r\n".encode())  # no Host
    assert answer.startswith(b"HTTP/1.1 400")
    line = access_line(site.nav, "uri", path, timeout=3)
    check(line, uri=path, status=400, response_type="error")


def test_shutdown_during_an_abandoned_start_logs_no_stray_traceback(tmp_path: Path) -> None:
    config = small_config(tmp_path, "logging:\n  format: json")
    config.write_text(config.read_text() + "      startup_timeout: 300ms\n"
                      "      env:\n        START_DELAY: \"5\"\n")
    with run_navigator(config) as nav:
        assert request(nav.port, "GET", "/b/x", timeout=20).status == 503  # maintenance
    # Every line of a JSON-format server is JSON; a stray asyncio traceback is not.
    assert nav.lines[-1].endswith(STOPPED["json"]), nav.output()
    assert "never retrieved" not in nav.output()
