"""`scope_cookies`' pure rule (navigator/proxy/cookies.py), as nginx's proxy_cookie_path."""

from __future__ import annotations

import pytest

from navigator.proxy.cookies import scope_cookie, scope_set_cookies, under


@pytest.mark.parametrize(("value", "stripped", "expected"), [
    (b"s=1; Path=/", False, b"s=1; Path=/t"),
    (b"s=1", False, b"s=1; Path=/t"),
    (b"s=1; HttpOnly", False, b"s=1; HttpOnly; Path=/t"),
    (b"s=1; path=/t/x; Secure", False, b"s=1; Path=/t/x; Secure"),
    (b"s=1; Path=/t", False, b"s=1; Path=/t"),
    (b"s=1; Path=/tx", False, b"s=1; Path=/t"),  # /tx is not under /t
    (b"s=1; Path=/other", False, b"s=1; Path=/t"),
    (b"s=1; Path=/other", True, b"s=1; Path=/t/other"),  # the app's path, below the prefix
    (b"s=1; Path=", False, b"s=1; Path=/t"),
    (b"s=1; Path=/; Path=/x", True, b"s=1; Path=/t; Path=/t/x"),  # every Path (last wins)
    (b"s=a=b; Path=/", False, b"s=a=b; Path=/t"),
])
def test_scope_cookie(value: bytes, stripped: bool, expected: bytes) -> None:
    assert scope_cookie(value, b"/t", stripped) == expected


def test_only_set_cookie_headers_change_and_none_means_the_same_list() -> None:
    headers = [(b"Content-Type", b"text/plain"), (b"set-cookie", b"a=1")]
    assert scope_set_cookies(headers, b"/t", False) == [
        (b"Content-Type", b"text/plain"), (b"set-cookie", b"a=1; Path=/t")]
    plain = [(b"Content-Type", b"text/plain")]
    assert scope_set_cookies(plain, b"/t", False) is plain


def test_under_is_rfc6265_path_match() -> None:
    assert all(under(path, b"/t") for path in (b"/t", b"/t/", b"/t/x"))
    assert not any(under(path, b"/t") for path in (b"/tx", b"/"))
