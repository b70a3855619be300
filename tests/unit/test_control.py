"""The control channel's line protocol and `restart`'s target lookup (pure)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from navigator.config.loader import load_config
from navigator.ops.control import control_path, format_answer, parse_answer, parse_request
from navigator.ops.restart import find_target
from navigator.web.snapshot import build_snapshot


@pytest.mark.parametrize(("line", "expected"), [
    (b"restart /sam/list1\n", ("restart", "/sam/list1")),
    (b"restart  sam \r\n", ("restart", "sam")),
    (b"restart\n", ("restart", "")),
])
def test_parse_request(line: bytes, expected: tuple[str, str]) -> None:
    assert parse_request(line) == expected


@pytest.mark.parametrize(("line", "match"), [(b"\n", "malformed request ''"),
                                             (b"/etc/passwd x\n", "malformed request"),
                                             (b"\xff\xfe\n", "can't decode")])
def test_malformed_requests(line: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):  # UnicodeDecodeError is a ValueError
        parse_request(line)


@pytest.mark.parametrize(("ok", "text"), [(True, "restarted a: pid 1 -> 2"),
                                          (False, "no tenant named 'x'")])
def test_answers_round_trip(ok: bool, text: str) -> None:
    assert parse_answer(format_answer(ok, text)) == (ok, text)


def test_answer_is_one_line() -> None:
    assert format_answer(False, "a\nb") == b"error a b\n"
    assert parse_answer(b"HTTP/1.1 400\r\n") == (False, "unexpected answer 'HTTP/1.1 400'")


def test_control_path_is_beside_the_pid_file() -> None:
    assert control_path(Path("/run/nav/navigator.pid")) == Path("/run/nav/navigator.pid.sock")


CONFIG = """
applications:
  tenants:
    - path: /sam/list1/
    - path: /sam/
    - path: /x/
      name: special
routes:
  reverse_proxies:
    - name: cable
      prefix: /cable/
      process: {command: x}
    - name: api
      path: ^/api/v[0-9]+/
      process: {command: y}
    - name: external
      prefix: /ext/
      target: http://127.0.0.1:9
"""


@pytest.mark.parametrize(("text", "expected"), [
    ("sam/list1", "sam/list1"),  # by name
    ("special", "special"),
    ("/sam/list1", "sam/list1"),  # a path, as a request to it would be routed
    ("/sam/list1/", "sam/list1"),
    ("/sam/list1/items/3", "sam/list1"),
    ("/sam/list2", "sam"),
    ("/x/", "special"),
    ("/cable", "cable"),  # an on-demand helper, through its route
    ("/cable/socket", "cable"),
    ("/api/v2/users", "api"),
    ("cable", "cable"),
    ("/ext/", None),  # an external target runs no process of ours
    ("/nowhere", None),
    ("nosuch", None),
    ("x", None),  # a path without its slash is not a name
])
def test_find_target(tmp_path: Path, text: str, expected: str | None) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text(textwrap.dedent(CONFIG))
    snapshot = build_snapshot(load_config(path, {}, cwd=tmp_path))
    found = find_target(snapshot, text)
    assert (found.name if found is not None else None) == expected
