"""Unit tests for navigator.web.routing: path normalisation and the request pipeline."""

from __future__ import annotations

import base64
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from navigator.config.runtime import (
    AuthPattern,
    AuthSettings,
    BotDetection,
    CableSettings,
    CacheOverride,
    CgiScript,
    Config,
    HealthCheck,
    HealthResponse,
    ListenAddress,
    Maintenance,
    ReplayTarget,
    ReverseProxyRoute,
    Rule,
    StampSettings,
    StaticSettings,
    Tenant,
    UpstreamTarget,
)
from navigator.web import bots
from navigator.web.decision import (
    CableBroadcast,
    CableSocket,
    Decision,
    ProxyExternal,
    ProxyTenant,
    RequestInfo,
    Respond,
    RunCgi,
    ServeFile,
)
from navigator.web.routing import RouteTable, encode_path, normalize_path, route, split_target
from navigator.web.snapshot import Snapshot, build_snapshot

GOOD = "Basic " + base64.b64encode(b"alice:wonder").decode()
BAD = "Basic " + base64.b64encode(b"alice:nope").decode()


def tenant(path: str, name: str = "") -> Tenant:
    return Tenant(name=name or path.strip("/"), path=path, root=Path("/tmp"), argv=("app",),
                  env=())


def config(**kwargs: Any) -> Config:
    base = Config(source=Path("/tmp/navigator.yml"), listen=ListenAddress("", 3000))
    return replace(base, **kwargs)


def snap(cfg: Config) -> Snapshot:
    return build_snapshot(cfg)


def req(path: str, method: str = "GET", **kwargs: Any) -> RequestInfo:
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    return RequestInfo(method=method, path=path, query=query, host="example.com",
                       peer_ip=kwargs.pop("peer_ip", "203.0.113.9"), **kwargs)


def slash_rules(*paths: str) -> tuple[Rule, ...]:
    return tuple(Rule("redirect", re.compile("^" + re.escape(p.rstrip("/")) + "$"), p)
                 for p in paths)


TENANTS = (tenant("/alpha/"), tenant("/alpha/beta/"), tenant("/public/"), tenant("/"))


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    file = tmp_path / "htpasswd"
    file.write_text("alice:" + bcrypt.hashpw(b"wonder", bcrypt.gensalt(4)).decode() + "\n")
    return file


@pytest.fixture
def public_dir(tmp_path: Path) -> Path:
    root = tmp_path / "public"
    (root / "assets").mkdir(parents=True)
    (root / "assets" / "app.css").write_text("body{}")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "about.html").write_text("<h1>about</h1>")
    (root / "alpha").mkdir()
    (root / "alpha" / "page.html").write_text("<h1>prerendered</h1>")
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "robots.txt").write_text("User-agent: *")
    return root


def static_settings(root: Path, **kwargs: Any) -> StaticSettings:
    base = StaticSettings(public_dir=root, allowed_extensions=frozenset(), try_files=(),
                          normalize_trailing_slashes=False, cache_default=None,
                          cache_default_immutable=False, cache_overrides=())
    return replace(base, **kwargs)


def auth_config(htpasswd: Path, **kwargs: Any) -> Config:
    settings = AuthSettings(True, "Staff Only", htpasswd, public_paths=("/public/", "*.css"))
    return config(tenants=TENANTS, auth=settings, **kwargs)


# --- normalisation -------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    ("/", "/"),
    ("/alpha/", "/alpha/"),
    ("/ALPHA/", "/ALPHA/"),
    ("//alpha/", "/alpha/"),
    ("/alpha//x", "/alpha/x"),
    ("/alpha%2f", "/alpha/"),
    ("/alpha%2F", "/alpha/"),
    ("/public/../alpha/", "/alpha/"),
    ("/public/%2e%2e/alpha/", "/alpha/"),
    ("/public/%2E%2E/alpha", "/alpha"),
    ("/public/..%2falpha/", "/alpha/"),
    ("/public%2f..%2falpha/", "/alpha/"),
    ("/a/./b/.", "/a/b/"),
    ("/a/b/..", "/a/"),
    ("/a/%252e%252e/b", "/a/%2e%2e/b"),
    ("/caf%C3%A9", "/café"),
    ("/a%20b", "/a b"),
    ("/a%5Cb", None),  # a backslash is a separator to some tenants: never data we route on
    ("/a%5cb", None),
    ("/a%0ab", None),
    ("/a%0D%0Ab", None),
    ("/a%09b", None),
    ("/a%7fb", None),
    ("/a%1fb", None),
    ("/a%23b", "/a#b"),  # data: the tenant decodes the forwarded `%23` to the same path
    ("/a%3Fb", "/a?b"),
    ("/a%3bb", "/a;b"),
    ("/.well-known/x", "/.well-known/x"),
    ("http://example.com/alpha/x", "/alpha/x"),
    ("/..", None),
    ("/../etc/passwd", None),
    ("/a/../../etc", None),
    ("/%2e%2e/etc", None),
    ("/a%00b", None),
    ("/a\x00b", None),
    ("/a\\b", None),
    ("/public/..;/alpha/", None),
    ("alpha", None),
    ("*", None),
])
def test_normalize_path(raw: str, expected: str | None) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(("raw", "usable"), [
    ("/alpha/x", "/alpha/x"),
    ("/alpha/a%2Fb", "/alpha/a%2Fb"),  # decodes to the decided path: kept as sent
    ("/alpha/a%20b", "/alpha/a%20b"),
    ("//alpha/x", None),  # changed by normalisation: re-encoded instead
    ("/alpha/../x", None),
])
def test_raw_target_kept_only_when_it_decodes_to_the_decided_path(raw: str,
                                                                  usable: str | None) -> None:
    result = split_target(raw)
    assert result is not None
    assert result[1] == usable


def test_encode_path_round_trips() -> None:
    assert encode_path("/a b/%/café?#") == "/a%20b/%25/caf%C3%A9%3F%23"


def test_encode_path_keeps_a_decoded_semicolon_data() -> None:
    """Re-encoding after a rewrite or dot segment must not turn `%3B` into a path parameter."""
    assert encode_path("/a;b/c") == "/a%3Bb/c"


@pytest.mark.parametrize(("raw", "upstream"), [
    ("/alpha/x/%2e%2e/y%3Bz", "/alpha/y%3Bz"),
    ("/alpha/x/../c%23", "/alpha/c%23"),
    ("/alpha/c%23", "/alpha/c%23"),
    ("/alpha/who%3F", "/alpha/who%3F"),
])
def test_upstream_target_decodes_to_the_decided_path(raw: str, upstream: str) -> None:
    decision = route(snap(config(tenants=TENANTS)), req(raw))
    assert isinstance(decision, ProxyTenant)
    assert decision.path == upstream
    assert normalize_path(upstream) == normalize_path(raw)


def test_options_asterisk_is_answered_here() -> None:
    decision = route(snap(config(tenants=(tenant("/", "root"),))), req("*", "OPTIONS"))
    assert decision == Respond(200, (("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),),
                               b"", "options")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_asterisk_with_another_method_is_400(method: str) -> None:
    decision = route(snap(config(tenants=(tenant("/", "root"),))), req("*", method))
    assert isinstance(decision, Respond)
    assert decision.status == 400


# --- tenants -------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "expected"), [
    ("/alpha/", "alpha"),
    ("/alpha/x/y", "alpha"),
    ("/alpha/beta/", "alpha/beta"),
    ("/alpha/beta/deep/er", "alpha/beta"),
    ("/alphabet/", ""),
    ("/other", ""),
])
def test_longest_prefix_tenant(path: str, expected: str) -> None:
    table = RouteTable.build(config(tenants=TENANTS))
    found = table.find_tenant(path)
    assert found is not None
    assert found.name == expected


def test_no_matching_tenant_is_404() -> None:
    decision = route(snap(config(tenants=(tenant("/alpha/"),))), req("/beta/"))
    assert decision == Respond(404, (), b"404 page not found", "error")


def test_no_tenants_is_404() -> None:
    decision = route(snap(config()), req("/anything"))
    assert isinstance(decision, Respond)
    assert decision.status == 404


def test_tenant_gets_path_and_query() -> None:
    decision = route(snap(config(tenants=TENANTS)), req("/alpha/x?y=1&z=%20"))
    assert decision == ProxyTenant(TENANTS[0], "/alpha/x?y=1&z=%20")


@pytest.mark.parametrize(("raw", "upstream"), [
    ("/alpha/a%2Fb", "/alpha/a%2Fb"),
    ("//alpha//x", "/alpha/x"),
    ("/alpha/./x/../y", "/alpha/y"),
    ("/alpha/caf%c3%a9", "/alpha/caf%c3%a9"),
])
def test_tenant_upstream_target(raw: str, upstream: str) -> None:
    decision = route(snap(config(tenants=TENANTS)), req(raw))
    assert isinstance(decision, ProxyTenant)
    assert decision.path == upstream


def test_bad_path_is_400() -> None:
    decision = route(snap(config(tenants=TENANTS)), req("/../etc/passwd"))
    assert isinstance(decision, Respond)
    assert decision.status == 400


# --- health and cable ----------------------------------------------------------------------
def test_health_with_response_skips_auth(htpasswd: Path) -> None:
    health = HealthCheck("/up", HealthResponse(200, b"OK", (("Content-Type", "text/plain"),)))
    decision = route(snap(auth_config(htpasswd, health_check=health)), req("/up"))
    assert decision == Respond(200, (("Content-Type", "text/plain"),), b"OK", "health")


def test_health_without_response_goes_to_tenant_without_auth(htpasswd: Path) -> None:
    cfg = auth_config(htpasswd, health_check=HealthCheck("/alpha/up", None))
    assert route(snap(cfg), req("/alpha/up")) == ProxyTenant(TENANTS[0], "/alpha/up")


@pytest.mark.parametrize(("peer", "method", "expected"), [
    ("127.0.0.1", "POST", CableBroadcast()),
    ("::1", "POST", CableBroadcast()),
    ("10.0.0.1", "POST", 403),
    ("127.0.0.1", "GET", 405),
])
def test_broadcast_endpoint(peer: str, method: str, expected: object, htpasswd: Path) -> None:
    decision = route(snap(auth_config(htpasswd)), req("/_broadcast", method, peer_ip=peer))
    if isinstance(expected, int):
        assert isinstance(decision, Respond)
        assert decision.status == expected
        if expected == 403:
            assert decision.body == b"Forbidden: /_broadcast is only accessible from localhost"
    else:
        assert decision == expected


def test_broadcast_disabled_with_cable() -> None:
    cfg = config(tenants=TENANTS, cable=CableSettings(enabled=False))
    assert isinstance(route(snap(cfg), req("/_broadcast", "POST", peer_ip="127.0.0.1")),
                      ProxyTenant)


def test_cable_socket_after_auth(htpasswd: Path) -> None:
    cfg = auth_config(htpasswd)
    assert route(snap(cfg), req("/cable", websocket=True)).status == 401  # type: ignore[union-attr]
    assert route(snap(cfg), req("/cable", websocket=True, authorization=GOOD)) == CableSocket()
    plain = route(snap(cfg), req("/cable", authorization=GOOD))
    assert isinstance(plain, ProxyTenant)


# --- auth ----------------------------------------------------------------------------------
def test_unauthorized_response(htpasswd: Path) -> None:
    decision = route(snap(auth_config(htpasswd)), req("/alpha/"))
    assert decision == Respond(401, (("WWW-Authenticate", 'Basic realm="Staff Only"'),),
                               b"Unauthorized", "auth-failure")


@pytest.mark.parametrize("raw", [
    "/alpha/x;.css", "/alpha/x%3b.css", "/alpha/x%23.css", "/alpha/x%3F.css",
    "/public;x/../alpha/", "/alpha/%2E%2E/alpha/x%23.css",
])
def test_public_suffix_tricks_need_credentials(raw: str, htpasswd: Path) -> None:
    """`*.css` is public: a path that a tenant could cut short must still ask for a login."""
    decision = route(snap(auth_config(htpasswd)), req(raw))
    assert isinstance(decision, Respond)
    assert decision.status == 401


@pytest.mark.parametrize("raw", [
    "/alpha/", "//alpha/", "/alpha%2f", "/public/../alpha/", "/public/%2e%2e/alpha/",
    "/public/..%2falpha/", "/public%2f..%2falpha/", "/public/./../alpha/x",
    "/%70ublic/../alpha/", "/public/x/../../alpha/",
])
def test_auth_bypass_attempts_are_refused(raw: str, htpasswd: Path) -> None:
    decision = route(snap(auth_config(htpasswd)), req(raw))
    assert isinstance(decision, Respond)
    assert decision.status == 401


@pytest.mark.parametrize("raw", ["/public/..;/alpha/", "/public/%2e%2e%3b/alpha/",
                                 "/public/a%00/alpha", "/public\\..\\alpha/",
                                 "/public/..%5calpha/", "/public/%2e%2e%5calpha/x.css",
                                 "/%2e%2e/alpha/", "/public/%2e%2e/%2e%2e/alpha/"])
def test_auth_bypass_attempts_rejected_as_bad_requests(raw: str, htpasswd: Path) -> None:
    decision = route(snap(auth_config(htpasswd)), req(raw))
    assert isinstance(decision, Respond)
    assert decision.status == 400


@pytest.mark.parametrize(("raw", "auth", "expected"), [
    ("/public/x", None, "proxy"),
    ("/alpha/app.css", None, "proxy"),
    ("/alpha/", GOOD, "proxy"),
    ("/alpha/", BAD, 401),
    ("/alpha/", "Bearer token", 401),
    ("/alpha/", "Basic !!!notbase64", 401),
])
def test_auth_decisions(raw: str, auth: str | None, expected: object, htpasswd: Path) -> None:
    info = req(raw, authorization=auth)
    decision = route(snap(auth_config(htpasswd)), info)
    if expected == "proxy":
        assert isinstance(decision, ProxyTenant)
    else:
        assert isinstance(decision, Respond)
        assert decision.status == expected


def test_remote_user_set_only_after_verified_login(htpasswd: Path) -> None:
    snapshot = snap(auth_config(htpasswd))
    good = req("/alpha/", authorization=GOOD)
    route(snapshot, good)
    assert good.remote_user == "alice"
    public_bad = req("/public/x", authorization=BAD)
    route(snapshot, public_bad)
    assert public_bad.remote_user == ""


def test_auth_patterns_off(htpasswd: Path) -> None:
    settings = AuthSettings(True, "R", htpasswd,
                            auth_patterns=(AuthPattern(re.compile(r"^/alpha/api/"), "off"),
                                           AuthPattern(re.compile(r"^/alpha/x"), "basic")))
    snapshot = snap(config(tenants=TENANTS, auth=settings))
    assert isinstance(route(snapshot, req("/alpha/api/v1")), ProxyTenant)
    assert route(snapshot, req("/alpha/x")).status == 401  # type: ignore[union-attr]


def test_auth_off_everything_public() -> None:
    assert isinstance(route(snap(config(tenants=TENANTS)), req("/alpha/")), ProxyTenant)


# --- rules ---------------------------------------------------------------------------------
def test_redirect_keeps_query() -> None:
    rules = (Rule("redirect", re.compile(r"^/old/(.*)$"), r"/new/\g<1>"),)
    decision = route(snap(config(tenants=TENANTS, rules=rules)), req("/old/a/b?x=1&y=2"))
    assert isinstance(decision, Respond)
    assert (decision.status, decision.response_type) == (302, "redirect")
    assert ("Location", "/new/a/b?x=1&y=2") in decision.headers
    assert decision.body == b'<a href="/new/a/b?x=1&amp;y=2">Found</a>.\n'


def test_slash_redirect_for_tenant() -> None:
    cfg = config(tenants=TENANTS, rules=slash_rules("/alpha/", "/alpha/beta/"))
    decision = route(snap(cfg), req("/alpha/beta"))
    assert isinstance(decision, Respond)
    assert ("Location", "/alpha/beta/") in decision.headers


def test_rewrite_chain_reaches_tenant_with_new_path() -> None:
    rules = (Rule("rewrite", re.compile(r"^/v1/"), "/v2/"),
             Rule("rewrite", re.compile(r"^/v2/(.*)$"), r"/alpha/\g<1>"),
             Rule("redirect", re.compile(r"^/v2/"), "/never"))
    decision = route(snap(config(tenants=TENANTS, rules=rules)), req("/v1/x%2Fy?q=1"))
    assert decision == ProxyTenant(TENANTS[0], "/alpha/x/y?q=1")


def test_rewrite_result_is_renormalised() -> None:
    rules = (Rule("rewrite", re.compile(r"^/go/(.*)$"), r"/alpha//\g<1>/./"),)
    decision = route(snap(config(tenants=TENANTS, rules=rules)), req("/go/x"))
    assert decision == ProxyTenant(TENANTS[0], "/alpha/x/")


def test_rules_see_path_after_auth(htpasswd: Path) -> None:
    rules = (Rule("redirect", re.compile(r"^/alpha/old$"), "/alpha/new"),)
    snapshot = snap(auth_config(htpasswd, rules=rules))
    assert route(snapshot, req("/alpha/old")).status == 401  # type: ignore[union-attr]
    assert route(snapshot, req("/alpha/old", authorization=GOOD)).status == 302  # type: ignore


# --- replay --------------------------------------------------------------------------------
STAMP = StampSettings(app="smooth", region="iad", machine_id="m-local")
REGION_RULE = Rule("replay", re.compile(r"^/alpha/"), "", ReplayTarget(region="sjc"))


def replay_snapshot(*rules: Rule) -> Snapshot:
    return snap(config(tenants=TENANTS, rules=rules, stamp=STAMP))


def test_replay_region_answer_exact_bytes() -> None:
    decision = route(replay_snapshot(REGION_RULE), req("/alpha/x"))
    assert decision == Respond(
        307, (("Content-Type", "application/vnd.fly.replay+json"),),
        b'{"region": "sjc", "timeout": "30s", "fallback": "force_self", "transform": '
        b'{"set_headers": [{"name": "X-Navigator-Retry", "value": "true"}]}}', "fly-replay")


def test_replay_region_forwards_authorization() -> None:
    decision = route(replay_snapshot(REGION_RULE), req("/alpha/x", authorization='Basic "q"'))
    assert isinstance(decision, Respond)
    assert decision.body == (
        b'{"region": "sjc", "timeout": "30s", "fallback": "force_self", "transform": '
        b'{"set_headers": [{"name": "X-Navigator-Retry", "value": "true"}, '
        b'{"name": "Authorization", "value": "Basic \\"q\\""}]}}')


@pytest.mark.parametrize(("target", "body"), [
    (ReplayTarget(app="smooth-pdf", status=302), b'{"app": "smooth-pdf"}'),
    (ReplayTarget(app="other", machine="m123"), b'{"app": "other", "instance": "m123"}'),
    (ReplayTarget(machine="m123"),
     b'{"app": "smooth", "instance": "m123", "timeout": "30s", "fallback": "force_self", '
     b'"transform": {"set_headers": [{"name": "X-Navigator-Retry", "value": "true"}, '
     b'{"name": "Authorization", "value": "' + GOOD.encode() + b'"}]}}'),
])
def test_replay_app_and_machine_bodies(target: ReplayTarget, body: bytes) -> None:
    rule = Rule("replay", re.compile(r"^/alpha/"), "", target)
    decision = route(replay_snapshot(rule), req("/alpha/x", authorization=GOOD))
    assert isinstance(decision, Respond)
    assert decision.status == target.status
    assert decision.body == body


@pytest.mark.parametrize("kwargs", [{"fly_replay_failed": True}, {"navigator_retry": True}])
def test_replay_loop_gives_maintenance(kwargs: dict[str, Any]) -> None:
    decision = route(replay_snapshot(REGION_RULE), req("/alpha/x", **kwargs))
    assert isinstance(decision, Respond)
    assert (decision.status, decision.response_type) == (503, "maintenance")


@pytest.mark.parametrize(("method", "kwargs", "host", "retries"), [
    ("POST", {"content_length": 1_048_576}, "sjc.smooth.internal", 0),
    ("PUT", {"chunked": True}, "sjc.smooth.internal", 3),  # connect retries: idempotent only
])
def test_ineligible_replay_is_proxied(method: str, kwargs: dict[str, Any], host: str,
                                      retries: int) -> None:
    decision = route(replay_snapshot(REGION_RULE), req("/alpha/x?y=1", method, **kwargs))
    assert decision == ProxyExternal(UpstreamTarget("http", host, 3000, ""), "/alpha/x?y=1",
                                     (("X-Navigator-Retry", "true"),), (), None,
                                     "fly-replay-proxy", retries)


@pytest.mark.parametrize(("target", "host"), [
    (ReplayTarget(app="pdf"), "pdf.internal"),
    (ReplayTarget(machine="m9"), "m9.vm.smooth.internal"),
])
def test_ineligible_replay_hosts(target: ReplayTarget, host: str) -> None:
    rule = Rule("replay", re.compile(r"^/alpha/"), "", target)
    decision = route(replay_snapshot(rule), req("/alpha/x", "POST", chunked=True))
    assert isinstance(decision, ProxyExternal)
    assert decision.target.host == host


def test_ineligible_retry_is_not_forwarded_again() -> None:
    decision = route(replay_snapshot(REGION_RULE),
                     req("/alpha/x", "POST", chunked=True, navigator_retry=True))
    assert isinstance(decision, Respond)
    assert decision.status == 503


@pytest.mark.parametrize(("method", "kwargs"), [
    ("GET", {}), ("POST", {"content_length": 1_048_575}), ("GET", {"chunked": True}),
    ("DELETE", {}), ("GET", {"websocket": True}),
])
def test_eligible_requests_are_replayed(method: str, kwargs: dict[str, Any]) -> None:
    decision = route(replay_snapshot(REGION_RULE), req("/alpha/x", method, **kwargs))
    assert isinstance(decision, Respond)
    assert decision.response_type == "fly-replay"


def test_replay_to_own_region_serves_locally() -> None:
    rule = Rule("replay", re.compile(r"^/alpha/"), "", ReplayTarget(region="iad"))
    assert isinstance(route(replay_snapshot(rule), req("/alpha/x")), ProxyTenant)


def test_replay_without_app_name_continues_locally_when_ineligible() -> None:
    snapshot = snap(config(tenants=TENANTS, rules=(REGION_RULE,)))
    assert isinstance(route(snapshot, req("/alpha/x", "POST", chunked=True)), ProxyTenant)


# --- CGI -----------------------------------------------------------------------------------
def test_cgi_exact_path_and_method() -> None:
    post = CgiScript("/admin/sync", Path("/bin/true"), method="POST")
    other = CgiScript("/admin/sync", Path("/bin/false"))
    snapshot = snap(config(tenants=TENANTS, cgi_scripts=(post, other)))
    assert route(snapshot, req("/admin/sync", "POST")) == RunCgi(post, "/admin/sync")
    assert route(snapshot, req("/admin/sync")) == RunCgi(other, "/admin/sync")
    assert isinstance(route(snapshot, req("/admin/sync/x")), ProxyTenant)


def test_cgi_method_mismatch_continues() -> None:
    post = CgiScript("/admin/sync", Path("/bin/true"), method="POST")
    assert isinstance(route(snap(config(tenants=TENANTS, cgi_scripts=(post,))),
                            req("/admin/sync")), ProxyTenant)


# --- reverse proxies -----------------------------------------------------------------------
def proxy_route(**kwargs: Any) -> ReverseProxyRoute:
    base = ReverseProxyRoute(name="api", pattern=None, prefix="/api/",
                             target=UpstreamTarget("http", "backend", 8080, "/v1"),
                             target_template="")
    return replace(base, **kwargs)


@pytest.mark.parametrize(("proxy", "raw", "upstream"), [
    (proxy_route(), "/api/users?x=1", "/v1/api/users?x=1"),
    (proxy_route(strip_path=True), "/api/users?x=1", "/v1/users?x=1"),
    (proxy_route(strip_path=True), "/api/a%2Fb", "/v1/a%2Fb"),
    (proxy_route(strip_path=True, target=UpstreamTarget("http", "b", 80, "")), "/api/", "/"),
    (proxy_route(prefix=None, pattern=re.compile(r"^/svc/(\w+)/(.*)$"), strip_path=True),
     "/svc/a/b/c", "/v1/a"),
    (proxy_route(prefix=None, pattern=re.compile(r"^/svc/(\w+)/(.*)$"),
                 target_template="http://backend:8080/x/$2/$1/$9"),
     "/svc/a/b c?q", "/x/b%20c/a/?q"),
])
def test_reverse_proxy_paths(proxy: ReverseProxyRoute, raw: str, upstream: str) -> None:
    decision = route(snap(config(tenants=TENANTS, reverse_proxies=(proxy,))), req(raw))
    assert isinstance(decision, ProxyExternal)
    assert decision.path == upstream
    assert decision.route is proxy


def test_reverse_proxy_template_may_change_host() -> None:
    proxy = proxy_route(prefix=None, pattern=re.compile(r"^/(\w+)/"),
                        target_template="https://$1.example.net/")
    decision = route(snap(config(reverse_proxies=(proxy,))), req("/eu/x"))
    assert isinstance(decision, ProxyExternal)
    assert decision.target == UpstreamTarget("https", "eu.example.net", 443, "/")


def test_reverse_proxy_headers_substituted() -> None:
    proxy = proxy_route(headers=(("X-Real-IP", "$remote_addr"), ("X-Proto", "$scheme"),
                                 ("X-Host", "$host"), ("X-Fixed", "1")))
    info = req("/api/x", client_ip="198.51.100.7")  # as the protocol sets it when trusted
    decision = route(snap(config(reverse_proxies=(proxy,))), info)
    assert isinstance(decision, ProxyExternal)
    assert decision.set_headers == (("X-Real-IP", "198.51.100.7"), ("X-Proto", "http"),
                                    ("X-Host", "example.com"), ("X-Fixed", "1"))


def test_reverse_proxy_remote_addr_is_the_peer_without_a_trusted_client() -> None:
    proxy = proxy_route(headers=(("X-Client", "$remote_addr"), ("X-Proto", "$scheme")))
    decision = route(snap(config(reverse_proxies=(proxy,))), req("/api/x", peer_ip="192.0.2.4"))
    assert isinstance(decision, ProxyExternal)
    assert decision.set_headers == (("X-Client", "192.0.2.4"), ("X-Proto", "http"))


def test_reverse_proxy_cors_preflight() -> None:
    cors = (("Access-Control-Allow-Origin", "*"),)
    proxy = proxy_route(response_headers=cors)
    snapshot = snap(config(reverse_proxies=(proxy,)))
    assert route(snapshot, req("/api/x", "OPTIONS")) == Respond(200, cors, b"", "proxy")
    decision = route(snapshot, req("/api/x"))
    assert isinstance(decision, ProxyExternal)
    assert decision.response_headers == cors


def test_reverse_proxies_first_match_wins_and_miss_continues() -> None:
    first = proxy_route(name="one", prefix="/api/")
    second = proxy_route(name="two", prefix="/api/v2/")
    snapshot = snap(config(tenants=TENANTS, reverse_proxies=(first, second)))
    decision = route(snapshot, req("/api/v2/x"))
    assert isinstance(decision, ProxyExternal)
    assert decision.route is first
    assert isinstance(route(snapshot, req("/apix")), ProxyTenant)


# --- static --------------------------------------------------------------------------------
def static_snapshot(root: Path, **kwargs: Any) -> Snapshot:
    settings = kwargs.pop("static", static_settings(root))
    return snap(config(tenants=TENANTS, static=settings, **kwargs))


def test_static_file_served(public_dir: Path) -> None:
    decision = route(static_snapshot(public_dir), req("/assets/app.css"))
    assert decision == ServeFile(str(public_dir / "assets" / "app.css"), ())


@pytest.mark.parametrize("raw", ["/assets/missing.css", "/assets", "/docs.x/../assets"])
def test_static_miss_goes_on(raw: str, public_dir: Path) -> None:
    assert isinstance(route(static_snapshot(public_dir), req(raw)), ProxyTenant)


def test_static_only_for_get_and_head(public_dir: Path) -> None:
    snapshot = static_snapshot(public_dir)
    assert isinstance(route(snapshot, req("/assets/app.css", "HEAD")), ServeFile)
    assert isinstance(route(snapshot, req("/assets/app.css", "POST")), ProxyTenant)


def test_static_allowed_extensions(public_dir: Path) -> None:
    settings = static_settings(public_dir, allowed_extensions=frozenset({"css"}))
    snapshot = static_snapshot(public_dir, static=settings)
    assert isinstance(route(snapshot, req("/assets/app.css")), ServeFile)
    assert isinstance(route(snapshot, req("/robots.txt")), ProxyTenant)


def test_static_root_path_stripped(public_dir: Path) -> None:
    snapshot = static_snapshot(public_dir, root_path="/showcase/")
    decision = route(snapshot, req("/showcase/assets/app.css"))
    assert decision == ServeFile(str(public_dir / "assets" / "app.css"), ())


def test_static_cache_control_longest_override(public_dir: Path) -> None:
    settings = static_settings(public_dir, cache_default=60, cache_overrides=(
        CacheOverride("/assets/", 31536000, True), CacheOverride("/", 0, False)))
    snapshot = static_snapshot(public_dir, static=settings)
    css = route(snapshot, req("/assets/app.css"))
    assert isinstance(css, ServeFile)
    assert css.headers == (("Cache-Control", "public, max-age=31536000, immutable"),)
    txt = route(snapshot, req("/robots.txt"))
    assert isinstance(txt, ServeFile)
    assert txt.headers == (("Cache-Control", "public, max-age=0"),)


def test_static_cache_control_uses_unstripped_path(public_dir: Path) -> None:
    settings = static_settings(public_dir, cache_default=None,
                               cache_overrides=(CacheOverride("/showcase/assets/", 99, False),))
    snapshot = static_snapshot(public_dir, static=settings, root_path="/showcase/")
    decision = route(snapshot, req("/showcase/assets/app.css"))
    assert isinstance(decision, ServeFile)
    assert decision.headers == (("Cache-Control", "public, max-age=99"),)


def test_index_html_redirects_to_directory(public_dir: Path) -> None:
    decision = route(static_snapshot(public_dir), req("/docs/index.html?a=1"))
    assert isinstance(decision, Respond)
    assert decision.status == 301
    assert ("Location", "/docs/?a=1") in decision.headers


def test_static_symlink_escape_refused(public_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cr3t")
    os.symlink(secret, public_dir / "leak.txt")
    assert isinstance(route(static_snapshot(public_dir), req("/leak.txt")), ProxyTenant)


def test_static_survives_maintenance(public_dir: Path) -> None:
    snapshot = static_snapshot(public_dir, maintenance=Maintenance(enabled=True))
    assert isinstance(route(snapshot, req("/assets/app.css")), ServeFile)
    page = route(snapshot, req("/alpha/"))
    assert isinstance(page, Respond)
    assert (page.status, page.response_type) == (503, "maintenance")
    assert ("Cache-Control", "no-cache, no-store, must-revalidate") in page.headers


# --- try_files -----------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [
    ("/about", "about.html"),
    ("/alpha/page", "alpha/page.html"),
    ("/docs/", "docs/index.html"),
    ("/", "index.html"),
    ("/missing", None),
])
def test_try_files(raw: str, expected: str | None, public_dir: Path) -> None:
    settings = static_settings(public_dir, try_files=("index.html", ".html"))
    decision = route(static_snapshot(public_dir, static=settings), req(raw))
    if expected is None:
        assert isinstance(decision, ProxyTenant)
    else:
        assert decision == ServeFile(str(public_dir / expected), ())


def test_try_files_skipped_for_post(public_dir: Path) -> None:
    settings = static_settings(public_dir, try_files=(".html",))
    decision = route(static_snapshot(public_dir, static=settings), req("/about", "POST"))
    assert isinstance(decision, ProxyTenant)


def test_try_files_for_public_paths_and_verified_users(public_dir: Path, htpasswd: Path) -> None:
    """Issue 22 item 4: the reference served public paths only; a logged-in user gets
    try_files too, and an unauthenticated request for a protected path is a 401 first."""
    settings = static_settings(public_dir, try_files=(".html",))
    auth = AuthSettings(True, "R", htpasswd, public_paths=("/about",))
    snapshot = static_snapshot(public_dir, static=settings, auth=auth)
    assert isinstance(route(snapshot, req("/about")), ServeFile)
    served = route(snapshot, req("/alpha/page", authorization=GOOD))
    assert served == ServeFile(str(public_dir / "alpha" / "page.html"), ())
    for headers in ({}, {"authorization": BAD}):
        denied = route(snapshot, req("/alpha/page", **headers))
        assert isinstance(denied, Respond)
        assert denied.status == 401


def test_try_files_not_reached_by_rewriting_a_public_path(public_dir: Path,
                                                          htpasswd: Path) -> None:
    settings = static_settings(public_dir, try_files=(".html",))
    auth = AuthSettings(True, "R", htpasswd, public_paths=("/open/",))
    rules = (Rule("rewrite", re.compile(r"^/open/"), "/alpha/"),)
    snapshot = static_snapshot(public_dir, static=settings, auth=auth, rules=rules)
    assert isinstance(route(snapshot, req("/open/page")), ProxyTenant)
    assert isinstance(route(snapshot, req("/open/page", authorization=GOOD)), ServeFile)


@pytest.mark.parametrize(("name", "sent", "location"), [
    ("q?x", "/q%3Fx", "/q%3Fx/?k=1"),
    ("h#x", "/h%23x", "/h%23x/?k=1"),
    ("s p", "/s%20p", "/s%20p/?k=1"),
])
def test_static_redirects_keep_the_decided_path(public_dir: Path, name: str, sent: str,
                                                location: str) -> None:
    """A decoded `?` or `#` in the path must not turn into a query or fragment in Location."""
    (public_dir / name).mkdir()
    (public_dir / name / "index.html").write_text("x")
    settings = static_settings(public_dir, try_files=("index.html",),
                               normalize_trailing_slashes=True)
    snapshot = static_snapshot(public_dir, static=settings)
    decision = route(snapshot, req(sent + "?k=1"))
    assert isinstance(decision, Respond)
    assert ("Location", location) in decision.headers
    decision = route(snapshot, req(sent + "/index.html?k=1"))
    assert isinstance(decision, Respond)
    assert ("Location", location) in decision.headers


def test_normalize_trailing_slashes(public_dir: Path) -> None:
    settings = static_settings(public_dir, try_files=("index.html",),
                               normalize_trailing_slashes=True)
    decision = route(static_snapshot(public_dir, static=settings), req("/docs?x=1"))
    assert isinstance(decision, Respond)
    assert decision.status == 301
    assert ("Location", "/docs/?x=1") in decision.headers


# --- bots ----------------------------------------------------------------------------------
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(("global_", "override", "ua", "blocked"), [
    (BotDetection(True, "reject"), None, GOOGLEBOT, True),
    (BotDetection(True, "static-only"), None, GOOGLEBOT, True),
    (BotDetection(True, "ignore"), None, GOOGLEBOT, False),
    (BotDetection(False), None, GOOGLEBOT, False),
    (BotDetection(True), None, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", False),
    (BotDetection(False), BotDetection(True), GOOGLEBOT, True),
    (BotDetection(True), BotDetection(False), GOOGLEBOT, False),
])
def test_bot_check(global_: BotDetection, override: BotDetection | None, ua: str,
                   blocked: bool) -> None:
    alpha = replace(tenant("/alpha/"), bot_detection=override)
    snapshot = snap(config(tenants=(alpha,), bot_detection=global_))
    decision = route(snapshot, req("/alpha/", user_agent=ua))
    if blocked:
        assert decision == Respond(403, (), b"Forbidden: Bot access not allowed", "bot-blocked")
    else:
        assert isinstance(decision, ProxyTenant)


def test_bots_still_get_static_files(public_dir: Path) -> None:
    snapshot = static_snapshot(public_dir, bot_detection=BotDetection(True, "static-only"))
    assert isinstance(route(snapshot, req("/robots.txt", user_agent=GOOGLEBOT)), ServeFile)


# --- ordering ------------------------------------------------------------------------------
def test_pipeline_order_rules_before_cgi_and_proxies() -> None:
    rules = (Rule("rewrite", re.compile(r"^/x$"), "/admin/sync"),)
    script = CgiScript("/admin/sync", Path("/bin/true"))
    proxy = proxy_route(prefix="/admin/")
    decision: Decision = route(snap(config(rules=rules, cgi_scripts=(script,),
                                           reverse_proxies=(proxy,))), req("/x"))
    assert decision == RunCgi(script, "/admin/sync")


@pytest.mark.parametrize(("ua", "bot"), [
    (GOOGLEBOT, True),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
    ("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)", True),
    ("facebookexternalhit/1.1", True),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", True),
    ("Some Crawler v2", True),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", False),
    ("Mozilla/5.0 (Linux; Android 9; CUBOT_X19) AppleWebKit/537.36 Mobile Safari", False),
    ("curl/8.5.0", False),
    ("python-requests/2.31", False),
    ("", False),
])
def test_is_bot(ua: str, bot: bool) -> None:
    assert bots.is_bot(ua) is bot
