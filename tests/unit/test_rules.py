"""Unit tests for navigator.web.rules: replacements, redirects, the rule walk, replay plans."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from navigator.config.runtime import Config, ListenAddress, ReplayTarget, Rule, StampSettings
from navigator.web.decision import RequestInfo, Respond
from navigator.web.rules import (
    MAINTENANCE,
    ReplayFallback,
    ReplayPlan,
    RuleList,
    expand,
    redirect_response,
    replay_eligible,
)


def cfg(*rules: Rule, stamp: StampSettings | None = None) -> Config:
    return Config(source=Path("/tmp/n.yml"), listen=ListenAddress("", 8080), rules=rules,
                  stamp=stamp or StampSettings(app="app", region="iad", machine_id="me"))


def req(method: str = "GET", **kwargs: Any) -> RequestInfo:
    query = kwargs.pop("query", "")
    return RequestInfo(method=method, path="/", query=query, host="h", peer_ip="1.2.3.4",
                       **kwargs)


@pytest.mark.parametrize(("pattern", "replacement", "path", "expected"), [
    (r"^/old/(.*)$", r"/new/\g<1>", "/old/a/b", "/new/a/b"),
    (r"^/(?P<year>\d+)/(?P<city>\w+)", r"/\g<city>/\g<year>", "/2025/boston/x", "/boston/2025/x"),
    (r"a", "b", "/banana", "/bbnbnb"),  # every match, like Go's ReplaceAllString
    (r"^/x(y)?$", r"/z\g<1>", "/x", "/z"),  # unmatched group expands to nothing
    (r"^/p$", "/cost$5", "/p", "/cost$5"),
])
def test_expand(pattern: str, replacement: str, path: str, expected: str) -> None:
    assert expand(Rule("rewrite", re.compile(pattern), replacement), path) == expected


@pytest.mark.parametrize(("location", "query", "header"), [
    ("/new", "", "/new"),
    ("/new", "a=1&b=2", "/new?a=1&b=2"),
    ("/new?x=1", "a=1", "/new?x=1&a=1"),
    ("/a b", "", "/a%20b"),
    ("/evil\r\nSet-Cookie: x=1", "", "/evil%0D%0ASet-Cookie:%20x=1"),
    ("/café", "", "/caf%C3%A9"),
    ("https://other.example/x", "", "https://other.example/x"),
])
def test_redirect_location_is_safe(location: str, query: str, header: str) -> None:
    response = redirect_response(location, query)
    assert response.status == 302
    assert response.headers[0] == ("Location", header)
    assert "\r" not in response.headers[0][1]


def test_redirect_body_escapes_html() -> None:
    response = redirect_response('/x"><script>', "")
    assert b"<script>" not in response.body
    assert response.body.startswith(b'<a href="/x%22%3E%3Cscript%3E">Found</a>')


@pytest.mark.parametrize(("method", "kwargs", "eligible"), [
    ("GET", {}, True),
    ("POST", {"content_length": 0}, True),
    ("POST", {"content_length": 1_048_575}, True),
    ("POST", {"content_length": 1_048_576}, False),
    ("GET", {"content_length": 5_000_000}, False),
    ("POST", {"chunked": True}, False),
    ("PUT", {"chunked": True}, False),
    ("PATCH", {"chunked": True}, False),
    ("DELETE", {"chunked": True}, True),
    ("POST", {}, True),  # no body at all
])
def test_replay_eligibility(method: str, kwargs: dict[str, Any], eligible: bool) -> None:
    assert replay_eligible(req(method, **kwargs)) is eligible


def test_exact_slash_redirects_collapse_into_one_lookup() -> None:
    rules = tuple(Rule("redirect", re.compile("^" + re.escape(f"/t{i}") + "$"), f"/t{i}/")
                  for i in range(500))
    dashed = Rule("redirect", re.compile(r"^/a\-b$"), "/a-b/")
    table = RuleList.build(cfg(*rules, dashed))
    assert len(table.steps) == 1
    _, terminal = table.run("/t499", req(query="q=1"))
    assert isinstance(terminal, Respond)
    assert terminal.headers[0] == ("Location", "/t499/?q=1")
    assert table.run("/a-b", req())[1] is not None
    assert table.run("/t4999", req()) == ("/t4999", None)


def test_regex_redirects_are_not_collapsed() -> None:
    table = RuleList.build(cfg(Rule("redirect", re.compile(r"^/a.b$"), "/x"),
                               Rule("redirect", re.compile(r"^/c$", re.IGNORECASE), "/y")))
    assert len(table.steps) == 2
    assert table.run("/aXb", req())[1] is not None
    assert table.run("/C", req())[1] is not None


def test_exact_redirects_match_only_their_path_and_join_the_dict_block() -> None:
    # A tenant's slash redirect carries its path, not a regex: metacharacters are literal.
    table = RuleList.build(cfg(Rule("redirect", None, "/a.b+c/", exact="/a.b+c"),
                               Rule("redirect", re.compile(r"^/d$"), "/e")))
    assert len(table.steps) == 1  # both in one lookup block
    _, terminal = table.run("/a.b+c", req())
    assert isinstance(terminal, Respond)
    assert terminal.headers[0] == ("Location", "/a.b+c/")
    assert table.run("/aXb+c", req()) == ("/aXb+c", None)
    assert table.run("/a.b+c/", req()) == ("/a.b+c/", None)
    assert expand(Rule("redirect", None, "/q/", exact="/q"), "/q") == "/q/"


def test_collapsed_block_keeps_order_and_first_wins() -> None:
    table = RuleList.build(cfg(
        Rule("redirect", re.compile(r"^/a$"), "/first"),
        Rule("rewrite", re.compile(r"^/b$"), "/a"),
        Rule("redirect", re.compile(r"^/a$"), "/second"),
        Rule("redirect", re.compile(r"^/a$"), "/third"),
    ))
    _, terminal = table.run("/b", req())
    assert isinstance(terminal, Respond)
    assert terminal.headers[0] == ("Location", "/second")


def test_rewrites_chain_and_stop_at_redirect() -> None:
    table = RuleList.build(cfg(
        Rule("rewrite", re.compile(r"^/a/"), "/b/"),
        Rule("rewrite", re.compile(r"^/b/"), "/c/"),
        Rule("redirect", re.compile(r"^/c/x$"), "/done"),
    ))
    assert table.run("/a/y", req()) == ("/c/y", None)
    path, terminal = table.run("/a/x", req())
    assert path == "/c/x"
    assert isinstance(terminal, Respond)


def region_rule(**target: Any) -> Rule:
    return Rule("replay", re.compile(r"^/t/"), "", ReplayTarget(**target))


def test_replay_methods_filter_skips_rule() -> None:
    table = RuleList.build(cfg(region_rule(region="sjc", methods=frozenset({"GET"}))))
    assert table.run("/t/x", req("POST"))[1] is None
    assert isinstance(table.run("/t/x", req("GET"))[1], Respond)


@pytest.mark.parametrize("kwargs", [{"fly_replay_failed": True}, {"navigator_retry": True}])
def test_replay_loop_marker(kwargs: dict[str, Any]) -> None:
    table = RuleList.build(cfg(region_rule(region="sjc")))
    assert table.run("/t/x", req(**kwargs))[1] is MAINTENANCE


def test_loop_headers_ignored_without_matching_rule() -> None:
    table = RuleList.build(cfg(region_rule(region="sjc")))
    assert table.run("/other", req(navigator_retry=True)) == ("/other", None)


def test_ineligible_replay_ends_rule_walk_with_fallback() -> None:
    table = RuleList.build(cfg(region_rule(region="sjc"),
                               Rule("redirect", re.compile(r"^/t/"), "/never")))
    _, terminal = table.run("/t/x", req("POST", chunked=True))
    assert isinstance(terminal, ReplayFallback)
    assert (terminal.target.host, terminal.target.port) == ("sjc.app.internal", 8080)
    assert terminal.retries == 0


@pytest.mark.parametrize(("target", "local"), [
    ({"region": "iad"}, True),
    ({"region": "sjc"}, False),
    ({"machine": "me"}, True),
    ({"machine": "other"}, False),
    ({"app": "app"}, False),
])
def test_replay_to_self_is_local(target: dict[str, Any], local: bool) -> None:
    plan = ReplayPlan.build(ReplayTarget(**target), cfg())
    assert plan.local is local


def test_replay_plan_bodies_are_valid_json() -> None:
    for target in (ReplayTarget(region="sjc"), ReplayTarget(app="pdf"),
                   ReplayTarget(machine="m1"), ReplayTarget(machine="m1", app="other")):
        plan = ReplayPlan.build(target, cfg())
        for auth in (None, 'Basic "\\x'):
            body = plan.respond(auth).body
            parsed = json.loads(body)
            headers = parsed.get("transform", {}).get("set_headers", [])
            if auth and plan.auth_suffix:
                assert headers[-1] == {"name": "Authorization", "value": auth}
            else:
                assert all(h["name"] != "Authorization" for h in headers)


def test_replay_region_fallback_needs_app_name() -> None:
    plan = ReplayPlan.build(ReplayTarget(region="sjc"), cfg(stamp=StampSettings()))
    assert plan.fallback is None
