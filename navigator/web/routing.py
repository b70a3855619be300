"""Routing: one request's facts + the current snapshot → a Decision.

Room: routing (PURE but for `stat` calls of the static stages). `RouteTable.build(config)` runs
once per config and precomputes every lookup, header tuple and canned answer; `route()` walks
the pipeline of reference section 4 in order: health → broadcast → auth → cable socket → rule
list → CGI → reverse proxies → static file → try_files → maintenance → bot check → tenant.

Path handling (the security-relevant part). THE rule of which path each stage sees; every
stage must decide on the same path the tenant will act on (issue 14):
1. `wire.request_target` (at headers-complete, before anything else): origin-form, absolute-form
   reduced to its path (authority never dialled) or `OPTIONS *`; `#`, bytes outside RFC 3986
   (in the query also what browsers leave unencoded: brackets, braces, `|`, `^`, backtick,
   backslash) and a `%` without two hex digits are 400 and close. So no fragment ever reaches
   a stage or a tenant.
2. `split_target` / `normalize_path` here percent-decode ONCE (so `%2f` is a `/` for matching,
   as nginx does), collapse `//`, resolve dot segments (`%2e%2e` too) and refuse (400) `..`
   above the root, `..;`-style segments, a raw or decoded backslash (a separator to some
   servers) and decoded control bytes (NUL, CR, LF...). The result is THE decided path.
3. Health, metrics, broadcast, auth, rules, CGI, reverse proxies, static (which resolves the
   file under `public_dir` and refuses anything outside it) and tenant matching all decide on
   that one path, so `//alpha/`, `/alpha%2f`, `/public/../alpha/`, `%2e%2e` cannot slip past
   auth. `%23`, `%3F`, `%3B` and a raw `;` stay data in the path, but a path holding `;`, `#`
   or `?` is never public (`auth.PublicPaths.matches`): a tenant that cuts the path there
   would act on a shorter path than the one auth matched.
4. Upstream request-target: the client's raw bytes when they decode to exactly the decided
   path and no rewrite happened (so `%2F` inside an id survives); otherwise the decided path
   re-encoded (`encode_path`; `;`, `#`, `?` stay percent-encoded). Either way the upstream,
   decoding once, sees the path we decided on. The query is forwarded byte for byte.
5. `OPTIONS *` is answered here (200 with `Allow`), never forwarded.
- Static files and try_files answer only GET/HEAD (a POST to a prerendered page must reach
  the app); try_files serves a verified user or a public path, never an unauthenticated
  request for a protected one (auth has answered 401 before any file is looked at).
- `remote_user` is set only after a verified Basic login (never from an unverified header).

Must not touch: sockets, asyncio, clocks, os.environ, module-level mutable state.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote, unquote_to_bytes, urlsplit

from navigator.config.runtime import (
    BotDetection,
    CgiScript,
    Config,
    Pairs,
    ReverseProxyRoute,
    StaticSettings,
    Tenant,
    UpstreamTarget,
)
from navigator.web import bots, static
from navigator.web.auth import Htpasswd, PublicPaths, www_authenticate
from navigator.web.decision import (
    CableBroadcast,
    CableSocket,
    Decision,
    ProxyExternal,
    ProxyTenant,
    ReplayWhenUp,
    RequestInfo,
    Respond,
    RunCgi,
    ServeFile,
    ServeMetrics,
    ServeStatusPage,
)
from navigator.web.rules import (
    MAINTENANCE,
    RETRY_HEADER,
    ReplayFallback,
    RuleList,
    redirect_response,
)


class RoutingView(Protocol):
    """What routing reads of a snapshot (`web.snapshot.Snapshot` is one). Declared here, the
    lower room, so the snapshot can import the route table without a cycle."""

    @property
    def routes(self) -> RouteTable: ...
    @property
    def auth(self) -> Htpasswd | None: ...
    @property
    def maintenance(self) -> Respond: ...

# Re-encoding keeps `;` encoded: a decoded `%3B` must stay data, never become a parameter.
_PATH_SAFE = "/:@!$&'()*+,=-._~"
_DECODED_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")  # controls; `\` (a separator to some)
_ABSOLUTE_FORM = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_DOLLAR_DIGIT = re.compile(r"\$([1-9])")
_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
_READ_METHODS = frozenset({"GET", "HEAD"})

BAD_REQUEST = Respond(400, (), b"Bad Request", "error")
# `OPTIONS *` asks about the server itself (RFC 9110 §9.3.7): answered here, never forwarded.
OPTIONS_SERVER = Respond(200, (("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),),
                         b"", "options")
NOT_FOUND = Respond(404, (), b"404 page not found", "error")
BOT_FORBIDDEN = Respond(403, (), b"Forbidden: Bot access not allowed", "bot-blocked")
BROADCAST_METHOD = Respond(405, (("Allow", "POST"),), b"Method Not Allowed", "broadcast")


# --- paths ----------------------------------------------------------------------------------
def _resolve_segments(decoded: str) -> str | None:
    """Collapse `//` and resolve `.`/`..` (RFC 3986 §5.2.4), refusing to climb above `/`."""
    if "//" not in decoded and "/." not in decoded:
        return decoded
    out: list[str] = []
    segments = decoded.split("/")
    for segment in segments[1:]:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not out:
                return None
            out.pop()
        elif segment.startswith(("..;", ".;")):
            return None  # Java-style path parameters on a dot segment: a known auth bypass
        else:
            out.append(segment)
    trailing = segments[-1] in ("", ".", "..")
    if not out:
        return "/"
    return "/" + "/".join(out) + ("/" if trailing else "")


def split_target(raw: str) -> tuple[str, str | None] | None:
    """(normalised path, raw path usable upstream or None), or None for a 400."""
    if not raw.startswith("/"):
        match = _ABSOLUTE_FORM.match(raw)  # absolute-form (RFC 9112 §3.2.2)
        if match is None:
            return None
        raw = raw[match.end():] or "/"
        if not raw.startswith("/"):
            return None
    if "\\" in raw or "\x00" in raw:
        return None
    if "%" in raw or not raw.isascii():
        try:
            data = raw.encode("latin-1")
        except UnicodeEncodeError:
            data = raw.encode("utf-8", "surrogateescape")
        decoded = unquote_to_bytes(data).decode("utf-8", "surrogateescape")
        if _DECODED_FORBIDDEN.search(decoded) is not None:
            return None
    else:
        decoded = raw
    path = _resolve_segments(decoded)
    if path is None:
        return None
    return path, (raw if path == decoded else None)


def normalize_path(raw: str) -> str | None:
    """The one path every stage decides on, or None when the request is invalid (→ 400)."""
    result = split_target(raw)
    return None if result is None else result[0]


def encode_path(path: str) -> str:
    """A decoded path as a request-target (decodes back to exactly `path`)."""
    return quote(path, safe=_PATH_SAFE, errors="surrogateescape")


def _join(base: str, rest: str) -> str:
    if not base:
        return rest if rest.startswith("/") else "/" + rest
    return base.rstrip("/") + "/" + rest.lstrip("/")


# --- reverse proxies ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProxyRoute:
    route: ReverseProxyRoute
    headers: Pairs
    dynamic_headers: bool  # values mention $remote_addr / $scheme / $host
    cors: Respond | None

    @classmethod
    def build(cls, route: ReverseProxyRoute) -> ProxyRoute:
        cors = Respond(200, route.response_headers, b"", "proxy") if route.response_headers \
            else None
        dynamic = any("$" in value for _, value in route.headers)
        return cls(route, route.headers, dynamic, cors)

    def decide(self, path: str, raw: str | None, req: RequestInfo) -> Decision | None:
        route = self.route
        match: re.Match[str] | None = None
        if route.pattern is not None:
            match = route.pattern.search(path)
            if match is None:
                return None
        elif route.prefix is None or not path.startswith(route.prefix):
            return None
        if self.cors is not None and req.method == "OPTIONS":
            return self.cors
        target = route.target
        if route.target_template and match is not None:
            target, upstream = _templated_target(route.target_template, match, target)
        elif route.strip_path:
            if match is not None:
                group = match.group(1) if match.re.groups else None
                upstream = _join(target.path, encode_path("/" + (group or "")))
            else:
                assert route.prefix is not None
                if raw is not None and raw.startswith(route.prefix):
                    rest = raw[len(route.prefix):]
                else:
                    rest = encode_path(path[len(route.prefix):])
                upstream = _join(target.path, rest)
        else:
            upstream = _join(target.path, raw if raw is not None else encode_path(path))
        if req.query:
            upstream += "?" + req.query
        headers = self.headers
        if self.dynamic_headers:
            remote = req.client_ip or req.peer_ip  # forwarding headers only if trusted
            scheme = req.forwarded_proto or "http"
            headers = tuple((name, value.replace("$remote_addr", remote)
                             .replace("$scheme", scheme).replace("$host", req.host))
                            for name, value in headers)
        if route.helper is not None:  # on-demand process: started, counted like a tenant
            return ProxyTenant(route.helper, upstream, headers, route.response_headers)
        return ProxyExternal(target, upstream, headers, route.response_headers, route, "proxy")


def _templated_target(template: str, match: re.Match[str],
                      default: UpstreamTarget) -> tuple[UpstreamTarget, str]:
    """`$1`..`$9` filled from the captures; the target's own path is the whole upstream path."""
    groups = match.re.groups
    url = _DOLLAR_DIGIT.sub(
        lambda m: (match.group(int(m.group(1))) or "") if int(m.group(1)) <= groups else "",
        template)
    parts = urlsplit(url)
    upstream = quote(parts.path or "/", safe=_PATH_SAFE + "%", errors="surrogateescape")
    host = parts.hostname or default.host
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = default.port
    if host == default.host and port == default.port:
        return default, upstream
    if parts.scheme == "https":
        return UpstreamTarget("https", host, port, parts.path), upstream
    return UpstreamTarget("http", host, port, parts.path), upstream


# --- the table ------------------------------------------------------------------------------
def _cache_pairs(max_age: int | None, immutable: bool) -> Pairs:
    if max_age is None:
        return ()
    value = f"public, max-age={max_age}" + (", immutable" if immutable else "")
    return (("Cache-Control", value),)


@dataclass(frozen=True, slots=True)
class RouteTable:
    config: Config
    tenants: dict[str, Tenant]
    tenant_max_len: int
    health_path: str
    health: Respond | None
    cable_enabled: bool
    cable_path: str
    broadcast_path: str
    broadcast_forbidden: Respond
    auth_enabled: bool
    public: PublicPaths
    unauthorized: Respond
    rules: RuleList
    cgi: dict[str, tuple[CgiScript, ...]]
    proxies: tuple[ProxyRoute, ...]
    static: StaticSettings | None
    static_root: str
    root_path: str
    cache_overrides: tuple[tuple[str, Pairs], ...]
    cache_default: Pairs
    maintenance_enabled: bool
    bots: BotDetection
    metrics_path: str = ""
    status_path: str = ""  # the HTML status page; "" = off
    # Memo for static.find_file: paths last found inside the public dir (mutable contents in
    # a frozen table: it lives and dies with this snapshot).
    inside: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, config: Config) -> RouteTable:
        tenants: dict[str, Tenant] = {}
        for tenant in config.tenants:
            if tenant.path and not tenant.helper_route:  # helpers: through their route
                tenants.setdefault(tenant.path, tenant)  # first one wins a tie
        cgi: dict[str, list[CgiScript]] = {}
        for script in config.cgi_scripts:
            cgi.setdefault(script.path, []).append(script)
        health = config.health_check
        health_respond = None
        if health.response is not None:
            health_respond = Respond(health.response.status, health.response.headers,
                                     health.response.body, "health")
        settings = config.static
        overrides: tuple[tuple[str, Pairs], ...] = ()
        default: Pairs = ()
        root = ""
        if settings is not None:
            root = os.path.realpath(settings.public_dir)
            ordered = sorted(settings.cache_overrides, key=lambda o: len(o.prefix), reverse=True)
            overrides = tuple((o.prefix, _cache_pairs(o.max_age, o.immutable)) for o in ordered)
            default = _cache_pairs(settings.cache_default, settings.cache_default_immutable)
        cable = config.cable
        return cls(
            config=config, tenants=tenants, tenant_max_len=max(map(len, tenants), default=0),
            health_path=health.path, health=health_respond,
            cable_enabled=cable.enabled, cable_path=cable.path,
            broadcast_path=cable.broadcast_path,
            broadcast_forbidden=Respond(
                403, (), f"Forbidden: {cable.broadcast_path} is only accessible from "
                         f"localhost".encode(), "broadcast"),
            auth_enabled=config.auth.enabled, public=PublicPaths.build(config.auth),
            unauthorized=Respond(401, (("WWW-Authenticate", www_authenticate(config.auth.realm)),),
                                 b"Unauthorized", "auth-failure"),
            rules=RuleList.build(config),
            cgi={path: tuple(scripts) for path, scripts in cgi.items()},
            proxies=tuple(ProxyRoute.build(r) for r in config.reverse_proxies),
            static=settings, static_root=root, root_path=config.root_path or "/",
            cache_overrides=overrides, cache_default=default,
            maintenance_enabled=config.maintenance.enabled, bots=config.bot_detection,
            metrics_path=config.metrics.path if config.metrics.enabled else "",
            status_path=config.status_page.path,
        )

    def find_tenant(self, path: str) -> Tenant | None:
        """Longest tenant prefix of `path`: one dict lookup per `/` boundary, longest first."""
        tenants = self.tenants
        end = min(len(path), self.tenant_max_len)
        while True:
            end = path.rfind("/", 0, end)
            if end < 0:
                return None
            tenant = tenants.get(path[:end + 1])
            if tenant is not None:
                return tenant

    def cache_headers(self, path: str) -> Pairs:
        """Cache-Control for a static answer: longest override prefix of the URL path wins."""
        for prefix, pairs in self.cache_overrides:
            if path.startswith(prefix):
                return pairs
        return self.cache_default

    def strip_root(self, path: str) -> str:
        root = self.root_path
        if root != "/" and path.startswith(root):
            return path[len(root) - 1:]
        return path


def maintenance_response(snapshot: RoutingView) -> Respond:
    """The 503 maintenance page (section 12), built once per snapshot."""
    return snapshot.maintenance


# --- the pipeline ---------------------------------------------------------------------------
def route(snapshot: RoutingView, req: RequestInfo) -> Decision:
    """Reference section 4, stages 3-13, for one request on one snapshot."""
    table = snapshot.routes
    target = split_target(req.path)
    if target is None:
        return OPTIONS_SERVER if req.path == "*" and req.method == "OPTIONS" else BAD_REQUEST
    path, raw = target

    if table.health_path and path == table.health_path:
        if table.health is not None:
            return table.health
        return _tenant_decision(table, path, raw, req, check_bots=False)

    if table.metrics_path and path == table.metrics_path and req.peer_ip in _LOOPBACK:
        return ServeMetrics()

    if table.cable_enabled and path == table.broadcast_path:
        if req.peer_ip not in _LOOPBACK:
            return table.broadcast_forbidden
        if req.method != "POST":
            return BROADCAST_METHOD
        return CableBroadcast()

    if table.auth_enabled:
        user = None
        if req.authorization and snapshot.auth is not None:
            user = snapshot.auth.check_header(req.authorization)
        if user is None:
            if not table.public.matches(path):
                return table.unauthorized
        else:
            req.remote_user = user

    if table.status_path and path == table.status_path and req.method in _READ_METHODS:
        if table.auth_enabled and not req.remote_user:  # even if a public path matched
            return table.unauthorized
        return ServeStatusPage()

    if table.cable_enabled and req.websocket and path == table.cable_path:
        return CableSocket()

    if table.rules.steps:
        rewritten, terminal = table.rules.run(path, req)
        if rewritten != path:
            resolved = _resolve_segments(rewritten)
            if resolved is None:
                return BAD_REQUEST
            path, raw = resolved, None
            req.rewritten_path = encode_path(path)
        if terminal is not None:
            if isinstance(terminal, (Respond, ReplayWhenUp)):
                return terminal
            if terminal is MAINTENANCE:
                return snapshot.maintenance
            assert isinstance(terminal, ReplayFallback)
            upstream = raw if raw is not None else encode_path(path)
            if req.query:
                upstream += "?" + req.query
            return ProxyExternal(terminal.target, upstream, ((RETRY_HEADER, "true"),), (),
                                 None, "fly-replay-proxy", terminal.retries,
                                 terminal.destination)

    scripts = table.cgi.get(path)
    if scripts:
        for script in scripts:
            if not script.method or script.method == req.method:
                return RunCgi(script, path)

    for proxy in table.proxies:
        decision = proxy.decide(path, raw, req)
        if decision is not None:
            return decision

    if table.static is not None and req.method in _READ_METHODS:
        found = _static_decision(table, table.static, path, req)
        if found is not None:
            return found

    if table.maintenance_enabled:
        return snapshot.maintenance
    return _tenant_decision(table, path, raw, req, check_bots=True)


def _static_decision(table: RouteTable, settings: StaticSettings, path: str,
                     req: RequestInfo) -> Decision | None:
    last = path[path.rfind("/") + 1:]
    dot = last.rfind(".")
    if dot >= 0:  # 9.1 direct static: paths with an extension
        if settings.allowed_extensions and last[dot + 1:] not in settings.allowed_extensions:
            return None
        found = static.locate_file(table.static_root, table.strip_root(path), table.inside)
        if found is None:
            return None
        if path.endswith("/index.html"):
            # The decided path re-encoded: a decoded `?`/`#` must stay path, not become a
            # query or fragment in Location.
            return redirect_response(encode_path(path[:-len("index.html")]), req.query, 301)
        return ServeFile(found[0], table.cache_headers(path), stat=found[1])
    # 9.2 try_files: extensionless paths, for a verified user or a public path (everything
    # is public with auth off). The reference serves public paths only, so a logged-in `/`
    # woke a tenant. The auth stage already answered 401 for anyone else; the public check
    # here covers a rewrite that moved a public request onto a protected path.
    if not settings.try_files or (not req.remote_user and not table.public.matches(path)):
        return None
    rel = table.strip_root(path)
    if (settings.normalize_trailing_slashes and not path.endswith("/")
            and static.dir_with_index(table.static_root, rel)):
        return redirect_response(encode_path(path + "/"), req.query, 301)
    for suffix in settings.try_files:
        found = static.locate_file(table.static_root, rel + suffix, table.inside)
        if found is not None:
            return ServeFile(found[0], table.cache_headers(path), stat=found[1])
    return None


def _tenant_decision(table: RouteTable, path: str, raw: str | None, req: RequestInfo, *,
                     check_bots: bool) -> Decision:
    tenant = table.find_tenant(path)
    if tenant is None:
        return NOT_FOUND
    if check_bots and bots.blocks_tenant(bots.effective_bot_settings(tenant, table.bots),
                                         req.user_agent):
        return BOT_FORBIDDEN
    if tenant.strip_prefix:  # the app sees paths below its prefix (`strip_prefix`)
        cut = len(tenant.path) - 1
        upstream = (raw[cut:] if raw is not None and raw.startswith(tenant.path)
                    else encode_path(path[cut:]))
    else:
        upstream = raw if raw is not None else encode_path(path)
    return ProxyTenant(tenant, upstream + "?" + req.query if req.query else upstream)
