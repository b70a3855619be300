"""Web-server features through the real server: static files (conditional, range,
precompressed, try_files), auth, health before auth, rules, a reverse proxy with websocket."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import sys
from collections.abc import Iterator

import pytest

from tests.helpers import (
    BACKEND_APP,
    Navigator,
    Reader,
    connect,
    request,
    run_backend_app,
    run_navigator,
    wait_until,
)

BODY = b"static body " * 100
CREDENTIALS = "Basic " + base64.b64encode(b"sam:secret").decode()


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    """backend_app on its own port, the target of the reverse-proxy route."""
    with run_backend_app() as port:
        yield port


@pytest.fixture(scope="module")
def nav(tmp_path_factory: pytest.TempPathFactory, backend: int) -> Iterator[Navigator]:
    root = tmp_path_factory.mktemp("web")
    public = root / "public"
    (public / "docs").mkdir(parents=True)
    (public / "a.txt").write_bytes(BODY)
    (public / "app.js").write_bytes(BODY)
    (public / "app.js.gz").write_bytes(gzip.compress(BODY))
    (public / "docs" / "index.html").write_text("<h1>docs</h1>")
    (public / "pub" / "sub").mkdir(parents=True)
    (public / "pub" / "sub" / "index.html").write_text("<p>sub</p>")
    (public / "pub" / "page.html").write_text("<p>prerendered</p>")
    (public / "index.html").write_text("<h1>home</h1>")
    (public / "b").mkdir()
    (public / "b" / "about.html").write_text("<p>b prerendered</p>")
    sha = base64.b64encode(hashlib.sha1(b"secret").digest()).decode()
    (root / "htpasswd").write_text(f"sam:{{SHA}}{sha}\n")
    port = random.randrange(20000, 32000, 101)
    text = f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {root}/navigator.pid
  health_check:
    path: /up
    response:
      status: 200
      body: "healthy"
  static:
    public_dir: {public}
    try_files: [index.html, .html]
    normalize_trailing_slashes: true
    cache_control:
      default: 1h
      overrides:
        - path: /pub/
          max_age: 7d
          immutable: true
auth:
  enabled: true
  realm: Team
  htpasswd: {root}/htpasswd
  public_paths: ["/pub/", "*.js", "/up"]
routes:
  redirects:
    - from: "^/r/(.*)$"
      to: "/a/$1"
  rewrites:
    - from: "^/old/(.*)$"
      to: "/older/$1"
    - from: "^/older/(.*)$"
      to: "/a/$1"
  reverse_proxies:
    - name: api
      prefix: /api/
      target: http://127.0.0.1:{backend}
      strip_path: true
      websocket: true
      headers:
        X-Proxy-Scheme: "$scheme"
      response_headers:
        X-From-Proxy: "yes"
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  pools:
    start_port: {port}
  tenants:
    - path: /a/
    - path: /b/
"""
    config = root / "navigator.yml"
    config.write_text(text)
    with run_navigator(config) as server:
        yield server


AUTH = {"Authorization": CREDENTIALS}


def test_health_answers_before_auth(nav: Navigator) -> None:
    resp = request(nav.port, "GET", "/up")
    assert (resp.status, resp.body) == (200, b"healthy")


def test_auth_required_and_accepted(nav: Navigator) -> None:
    denied = request(nav.port, "GET", "/a.txt")
    assert denied.status == 401
    assert denied.header("www-authenticate") == 'Basic realm="Team"'
    wrong = request(nav.port, "GET", "/a.txt", headers={
        "Authorization": "Basic " + base64.b64encode(b"sam:nope").decode()})
    assert wrong.status == 401
    assert request(nav.port, "GET", "/a.txt", headers=AUTH).body == BODY


def test_static_conditional_and_cache_headers(nav: Navigator) -> None:
    first = request(nav.port, "GET", "/a.txt", headers=AUTH)
    assert first.header("cache-control") == "public, max-age=3600"
    etag, modified = first.header("etag"), first.header("last-modified")
    assert etag
    assert modified
    assert request(nav.port, "GET", "/a.txt",
                   headers={**AUTH, "If-None-Match": etag}).status == 304
    assert request(nav.port, "GET", "/a.txt",
                   headers={**AUTH, "If-Modified-Since": modified}).status == 304
    head = request(nav.port, "HEAD", "/a.txt", headers=AUTH)
    assert head.header("content-length") == str(len(BODY))


def test_static_ranges(nav: Navigator) -> None:
    part = request(nav.port, "GET", "/a.txt", headers={**AUTH, "Range": "bytes=7-10"})
    assert part.status == 206
    assert part.body == BODY[7:11]
    assert part.header("content-range") == f"bytes 7-10/{len(BODY)}"
    assert request(nav.port, "GET", "/a.txt",
                   headers={**AUTH, "Range": "bytes=99999-"}).status == 416


def test_precompressed_sibling_served_when_accepted(nav: Navigator) -> None:
    gz = request(nav.port, "GET", "/app.js", headers={"Accept-Encoding": "gzip, br"})
    assert gz.header("content-encoding") == "gzip"
    assert "Accept-Encoding" in (gz.header("vary") or "")
    assert gzip.decompress(gz.body) == BODY
    plain = request(nav.port, "GET", "/app.js")  # public by the *.js rule
    assert plain.header("content-encoding") is None
    assert plain.body == BODY


def test_try_files_and_trailing_slash(nav: Navigator) -> None:
    page = request(nav.port, "GET", "/pub/page")
    assert page.body == b"<p>prerendered</p>"
    assert page.header("cache-control") == "public, max-age=604800, immutable"
    # try_files and slash normalisation serve public paths only (reference section 9.2)
    slash = request(nav.port, "GET", "/pub/sub")
    assert (slash.status, slash.header("location")) == (301, "/pub/sub/")
    assert request(nav.port, "GET", "/pub/sub/").body == b"<p>sub</p>"


def test_try_files_for_authenticated_requests(nav: Navigator) -> None:
    """Issue 22 item 4: a logged-in user gets prerendered pages too, without waking a tenant;
    without credentials the same paths are 401 before any file is looked at."""
    assert request(nav.port, "GET", "/", headers=AUTH).body == b"<h1>home</h1>"
    assert request(nav.port, "GET", "/docs/", headers=AUTH).body == b"<h1>docs</h1>"
    slash = request(nav.port, "GET", "/docs", headers=AUTH)
    assert (slash.status, slash.header("location")) == (301, "/docs/")
    page = request(nav.port, "GET", "/b/about", headers=AUTH)
    assert (page.status, page.body) == (200, b"<p>b prerendered</p>")
    assert "tenant b starting" not in nav.output()
    wrong = {"Authorization": "Basic " + base64.b64encode(b"sam:nope").decode()}
    for path in ("/", "/docs/", "/docs", "/b/about", "/index"):
        for headers in ({}, wrong):
            denied = request(nav.port, "GET", path, headers=headers)
            assert (denied.status, denied.body) == (401, b"Unauthorized"), (path, headers)


def test_traversal_is_refused(nav: Navigator) -> None:
    for path in ("/pub/../../../etc/passwd", "/pub/%2e%2e/%2e%2e/etc/passwd",
                 "/pub/..%2f..%2fetc/passwd"):
        resp = request(nav.port, "GET", path, headers=AUTH)
        assert resp.status in (400, 404), path
        assert b"root:" not in resp.body


def test_redirect_keeps_query_string(nav: Navigator) -> None:
    resp = request(nav.port, "GET", "/r/x?y=1&z=2", headers=AUTH)
    assert (resp.status, resp.header("location")) == (302, "/a/x?y=1&z=2")


def test_rewrite_chain_reaches_the_tenant(nav: Navigator) -> None:
    resp = request(nav.port, "GET", "/old/echo?q=1", headers=AUTH)
    assert resp.status == 200
    assert json.loads(resp.body)["target"] == "/a/echo?q=1"


def test_reverse_proxy_strips_path_and_sets_headers(nav: Navigator) -> None:
    resp = request(nav.port, "GET", "/api/echo?k=v", headers=AUTH)
    echo = json.loads(resp.body)
    assert echo["target"] == "/echo?k=v"
    headers = {k.lower(): v for k, v in echo["headers"]}
    assert headers["x-proxy-scheme"] == "http"
    assert resp.header("x-from-proxy") == "yes"
    preflight = request(nav.port, "OPTIONS", "/api/echo", headers=AUTH)
    assert (preflight.status, preflight.header("x-from-proxy")) == (200, "yes")


def test_reverse_proxy_websocket(nav: Navigator) -> None:
    with connect(nav.port) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /api/ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\nAuthorization: " + CREDENTIALS.encode()
                     + b"\r\n\r\n")
        assert reader.response().status == 101
        sock.sendall(b"hello tunnel")
        assert reader.read_exactly(12) == b"hello tunnel"


def test_metrics_endpoint_after_requests(nav: Navigator) -> None:
    wait_until(lambda: request(nav.port, "GET", "/a/x", headers=AUTH).status == 200, 20)
    text = request(nav.port, "GET", "/_navigator/metrics").body.decode()
    assert 'navigator_requests_total{tenant="a",status_class="2xx"}' in text
    assert 'navigator_tenant_state{tenant="a",state="ready"} 1' in text
