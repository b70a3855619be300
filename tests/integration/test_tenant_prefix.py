"""Prefix handling for frameworks (issue 18): `strip_prefix` (the path without the tenant's
prefix, the prefix in X-Forwarded-Prefix), `script_name` (SCRIPT_NAME in the tenant's env)
and `scope_cookies` (Set-Cookie Path rewritten to the prefix), through the real server with
real tenant processes. The defaults stay the reference's: full path, cookies untouched."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import BACKEND_APP, Navigator, request, run_navigator, write_config

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def nav(tmp_path: Path) -> Iterator[Navigator]:
    port = random.randrange(20000, 32000, 101)
    text = f"""
server:
  listen: "127.0.0.1:0"
  pid_file: {tmp_path}/navigator.pid
applications:
  framework:
    command: {sys.executable}
    args: [{BACKEND_APP}]
  health_check: /up
  scope_cookies: true
  pools:
    start_port: {port}
    timeout: 5m
  tenants:
    - path: /plain/
      scope_cookies: false
    - path: /strip/me/
      strip_prefix: true
      script_name: true
    - path: /scoped/
    - path: /gunicorn/
      script_name: true
      env:
        OTHER: "1"
    - path: /own/
      script_name: true
      env:
        SCRIPT_NAME: /mine
"""
    with run_navigator(write_config(tmp_path, text)) as server:
        yield server


def echo(nav: Navigator, path: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    resp = request(nav.port, "GET", path, headers=headers)
    assert resp.status == 200, resp.body
    body = json.loads(resp.body)
    return {"target": body["target"],
            **{k.lower(): v for k, v in body["headers"]}}


def env_of(nav: Navigator, prefix: str, name: str) -> str:
    resp = request(nav.port, "GET", f"{prefix}env?name={name}")
    assert resp.status == 200
    return resp.body.decode()


def cookies(nav: Navigator, prefix: str, *values: str) -> list[str]:
    query = "&".join("c=" + quote(v) for v in values)
    resp = request(nav.port, "GET", f"{prefix}cookie?{query}")
    assert resp.status == 200
    return resp.header_all("Set-Cookie")


def test_default_forwards_the_full_path_without_a_prefix_header(nav: Navigator) -> None:
    got = echo(nav, "/plain/x/echo?q=1", {"X-Forwarded-Prefix": "/client"})
    assert got["target"] == "/plain/x/echo?q=1"
    assert got["x-forwarded-prefix"] == "/client"  # the reference passes it on untouched
    assert env_of(nav, "/plain/", "SCRIPT_NAME") == ""


def test_strip_prefix_forwards_the_rest_and_names_the_prefix(nav: Navigator) -> None:
    got = echo(nav, "/strip/me/x/echo?q=1", {"X-Forwarded-Prefix": "/evil"})
    assert got["target"] == "/x/echo?q=1"
    assert got["x-forwarded-prefix"] == "/strip/me"  # ours; the client's is dropped
    assert echo(nav, "/strip/me/%7Ex/echo")["target"] == "/%7Ex/echo"  # raw encoding kept
    assert echo(nav, "/strip/me/./y/../x/echo")["target"] == "/x/echo"  # the resolved path
    assert env_of(nav, "/strip/me/", "SCRIPT_NAME") == "/strip/me"


def test_script_name_in_env_without_stripping(nav: Navigator) -> None:
    got = echo(nav, "/gunicorn/a/echo")
    assert got["target"] == "/gunicorn/a/echo"  # gunicorn strips SCRIPT_NAME itself
    assert "x-forwarded-prefix" not in got
    assert env_of(nav, "/gunicorn/", "SCRIPT_NAME") == "/gunicorn"
    assert env_of(nav, "/gunicorn/", "OTHER") == "1"
    assert env_of(nav, "/own/", "SCRIPT_NAME") == "/mine"  # the operator's value wins


def test_default_leaves_cookie_paths_alone(nav: Navigator) -> None:
    assert cookies(nav, "/plain/", "s=1; Path=/; HttpOnly", "t=2") == [
        "s=1; Path=/; HttpOnly", "t=2"]


def test_scope_cookies_rewrites_root_and_missing_paths_to_the_prefix(nav: Navigator) -> None:
    got = cookies(nav, "/scoped/", "s=1; Path=/; HttpOnly", "t=2", "u=3; path=/scoped/a",
                  "v=4; Path=/elsewhere; Secure", "w=5; Path=/scopedx")
    assert got == ["s=1; Path=/scoped; HttpOnly", "t=2; Path=/scoped",
                   "u=3; Path=/scoped/a", "v=4; Path=/scoped; Secure", "w=5; Path=/scoped"]


def test_scope_cookies_with_a_stripped_prefix_puts_app_paths_under_it(nav: Navigator) -> None:
    got = cookies(nav, "/strip/me/", "s=1; Path=/", "t=2; Path=/admin",
                  "u=3; Path=/strip/me/x")
    assert got == ["s=1; Path=/strip/me", "t=2; Path=/strip/me/admin",
                   "u=3; Path=/strip/me/x"]
