"""CGI pure helpers: access check, environment (RFC 3875 §4.1) and response-head parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from navigator.config.runtime import CgiScript
from navigator.extras.cgi import (
    CgiOutputError,
    build_cgi_env,
    check_cgi_access,
    parse_header_line,
    parse_status,
    response_head,
)
from navigator.web.decision import RequestInfo

SCRIPT = CgiScript(path="/admin/run", script=Path("/srv/cgi/run.sh"),
                   env=(("SCRIPT_VAR", "s"), ("SHARED", "from-script"),
                        ("GATEWAY_INTERFACE", "spoofed")))


def request(**overrides: object) -> RequestInfo:
    values: dict[str, object] = {"method": "POST", "path": "/admin/run", "query": "a=1&b=2",
                                 "host": "example.com:8080", "peer_ip": "10.0.0.7"}
    values.update(overrides)
    return RequestInfo(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("allowed", "user", "expected"), [
    (frozenset(), None, None),
    (frozenset(), "anyone", None),
    (frozenset({"alice"}), None, 401),
    (frozenset({"alice"}), "", 401),
    (frozenset({"alice"}), "   ", 401),
    (frozenset({"alice"}), "bob", 403),
    (frozenset({"alice"}), "alice", None),
    (frozenset({"alice"}), " alice ", None),
    (frozenset({"alice", "bob"}), "bob", None),
    (frozenset({"alice"}), "Alice", 403),
])
def test_check_cgi_access(allowed: frozenset[str], user: str | None, expected: int | None) -> None:
    script = CgiScript(path="/x", script=Path("/x"), allowed_users=allowed)
    assert check_cgi_access(script, user) == expected


def test_build_env_standard_variables() -> None:
    headers = [(b"Host", b"example.com:8080"), (b"Content-Type", b"application/json"),
               (b"Content-Length", b"12"), (b"Accept", b"text/html"), (b"accept", b"*/*"),
               (b"X-Custom-Thing", b" v "), (b"X_Spoof", b"evil"), (b"Proxy", b"http://evil"),
               (b"Cookie", b"a=1")]
    base = {"PATH": "/usr/bin", "SHARED": "from-server", "HTTP_STALE": "kept",
            "CONTENT_TYPE": "stale", "REMOTE_USER": "stale"}
    env = build_cgi_env(SCRIPT, request(), headers, 3000, base)
    assert env["PATH"] == "/usr/bin"
    assert env["SHARED"] == "from-script"  # script env over server env
    assert env["SCRIPT_VAR"] == "s"
    expected = {
        "GATEWAY_INTERFACE": "CGI/1.1",  # CGI variables over both
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "Navigator",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "3000",
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": "a=1&b=2",
        "SCRIPT_NAME": "/admin/run",
        "PATH_INFO": "",
        "REMOTE_ADDR": "10.0.0.7",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "12",
        "HTTP_HOST": "example.com:8080",
        "HTTP_ACCEPT": "text/html, */*",
        "HTTP_X_CUSTOM_THING": "v",
        "HTTP_COOKIE": "a=1",
    }
    assert {k: env[k] for k in expected} == expected
    for absent in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_X_SPOOF", "HTTP_PROXY",
                   "REMOTE_USER", "AUTH_TYPE"):
        assert absent not in env
    assert base["CONTENT_TYPE"] == "stale"  # input mapping untouched


@pytest.mark.parametrize(("host", "server_name"), [
    ("example.com", "example.com"),
    ("example.com:443", "example.com"),
    ("", "localhost"),
    ("[::1]:8080", "::1"),
    ("[::1]", "::1"),
    ("127.0.0.1:9", "127.0.0.1"),
])
def test_server_name(host: str, server_name: str) -> None:
    env = build_cgi_env(SCRIPT, request(host=host), [], 80, {})
    assert env["SERVER_NAME"] == server_name


def test_build_env_without_body_and_with_user() -> None:
    env = build_cgi_env(SCRIPT, request(method="GET", query="", remote_user="alice"), [], 80,
                        {"CONTENT_LENGTH": "99"}, protocol="HTTP/1.0")
    assert "CONTENT_TYPE" not in env
    assert "CONTENT_LENGTH" not in env
    assert env["QUERY_STRING"] == ""
    assert env["REMOTE_USER"] == "alice"
    assert env["AUTH_TYPE"] == "Basic"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_content_length_from_request_info_when_header_missing() -> None:
    env = build_cgi_env(SCRIPT, request(content_length=5), [], 80, {})
    assert env["CONTENT_LENGTH"] == "5"


@pytest.mark.parametrize(("lines", "status", "headers"), [
    ([b"Content-Type: text/plain"], 200, [("Content-Type", "text/plain")]),
    ([b"Status: 404 Not Found", b"Content-Type: text/html"], 404,
     [("Content-Type", "text/html")]),
    ([b"status:201"], 201, []),
    ([b"Location: /elsewhere"], 302, [("Location", "/elsewhere")]),
    ([b"Status: 301", b"Location: /x"], 301, [("Location", "/x")]),
    ([b"X-A: 1", b"X-A: 2", b"Set-Cookie: a=b; Path=/"], 200,
     [("X-A", "1"), ("X-A", "2"), ("Set-Cookie", "a=b; Path=/")]),
    ([b"X-Empty:"], 200, [("X-Empty", "")]),
])
def test_response_head(lines: list[bytes], status: int, headers: list[tuple[str, str]]) -> None:
    assert response_head(lines) == (status, headers)


@pytest.mark.parametrize("line", [
    b"no colon here", b": empty name", b"Bad Name: x", b"X-Cr: a\rb", b"<html>",
])
def test_malformed_header_lines(line: bytes) -> None:
    with pytest.raises(CgiOutputError):
        parse_header_line(line)


@pytest.mark.parametrize("value", ["", "abc", "99", "600 Nope", "2000", "20x"])
def test_invalid_status(value: str) -> None:
    with pytest.raises(CgiOutputError):
        parse_status(value)
