"""The ordered rule list: redirects, rewrites, fly-replay rules, slash redirects.

Room: routing (PURE). Built once per config by `RuleList.build`; `RuleList.run` walks the
rules for one request (reference sections 6 and 17) and returns the (possibly rewritten) path
plus, when a rule ends the walk, what to answer.

Invariants:
- `expand` is the ONE place a replacement template is applied (every non-overlapping match is
  replaced, as Go's ReplaceAllString does);
- consecutive "exact literal" redirects (`^/t1$` → `/t1/`, which config synthesises for every
  tenant) collapse into one dict lookup, so the walk never costs one regex per tenant;
- replay JSON bodies are precomputed bytes; only the Authorization value is encoded per request;
- a Location header is always percent-encoded (no CR/LF/space/non-ASCII can reach the head);
- a replay target that is this machine/region is skipped (serving locally cannot loop);
- a request that was already replayed (our `X-Navigator-Retry`, or Fly's `fly-replay-failed`)
  is never replayed again: a forced target (`instance`, region) answers with the maintenance
  page, a preferred one (`prefer_instance`) is served here, as Fly's own fallback would be;
- with `stamps.machine_start`, a replay to a machine id is a `ReplayWhenUp` (the answer plus
  its destination), which `proxy.wake` gives once that machine runs;
- a run of placement rules (`stamps.placement_rules`) is one dict lookup per `/` boundary of
  the path, longest first, as tenant routing does; the tenant found decides: placed here (or
  not on Fly at all) ends the lookup without a replay, placed elsewhere replays.

Must not touch: I/O, asyncio, clocks, os.environ (FLY_* come from `Config.stamp`).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from urllib.parse import quote

from navigator.config.runtime import Config, Pairs, ReplayTarget, Rule, UpstreamTarget
from navigator.web.decision import Destination, ReplayWhenUp, RequestInfo, Respond

REPLAY_MAX_BODY = 1_048_576  # Fly refuses to replay bodies of 1 MiB or more
REPLAY_CONTENT_TYPE = "application/vnd.fly.replay+json"
RETRY_HEADER = "X-Navigator-Retry"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
FALLBACK_RETRIES = 3  # extra connect attempts to another machine (idempotent methods only)
_LOCATION_SAFE = "/:?#[]@!$&'()*+,;=%~-._"
_REGEX_META = frozenset(".^$*+?{}[]|()\\")
_STATUS_TEXT = {301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect",
                308: "Permanent Redirect"}


def expand(rule: Rule, path: str) -> str:
    """Apply the rule's replacement to every match in `path` (the one place that does it)."""
    if rule.pattern is None:  # an exact redirect: its location
        return rule.replacement
    return rule.pattern.sub(rule.replacement, path)


def redirect_response(location: str, query: str = "", status: int = 302) -> Respond:
    """A redirect with a short HTML body; the query string is kept (section 6 [defect])."""
    target = quote(location, safe=_LOCATION_SAFE, errors="surrogateescape")
    if query:
        target += ("&" if "?" in target else "?") + quote(query, safe=_LOCATION_SAFE)
    text = _STATUS_TEXT.get(status, "Redirect")
    body = f'<a href="{html.escape(target)}">{text}</a>.\n'.encode()
    headers = (("Location", target), ("Content-Type", "text/html; charset=utf-8"))
    return Respond(status, headers, body, "redirect")


# --- replay ---------------------------------------------------------------------------------
def replay_eligible(req: RequestInfo) -> bool:
    """Section 17.2: bodies of 1 MiB+, or of unknown length on POST/PUT/PATCH, stay local."""
    if req.content_length is not None and req.content_length >= REPLAY_MAX_BODY:
        return False
    return not (req.chunked and req.method in _BODY_METHODS)


@dataclass(frozen=True, slots=True)
class ReplayFallback:
    """Ineligible request for a remote tenant: reverse-proxy it over the private network."""

    target: UpstreamTarget
    retries: int
    destination: Destination | None = None  # with machine_start: started first if stopped


@dataclass(frozen=True, slots=True)
class MaintenanceMarker:
    """Answer with the snapshot's maintenance page (replay loop or failed replay)."""


MAINTENANCE = MaintenanceMarker()
Terminal = Respond | ReplayWhenUp | ReplayFallback | MaintenanceMarker


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    status: int
    headers: Pairs
    body: bytes  # the answer when the request has no Authorization (or none is forwarded)
    auth_prefix: bytes  # body up to the point where the Authorization entry is inserted;
    auth_suffix: bytes  # empty when the target does not take it
    fallback: UpstreamTarget | None  # None: no FLY_APP_NAME, continue locally
    local: bool  # the target is this region/machine: the rule is skipped
    methods: frozenset[str]
    preferred: bool = False  # prefer_instance: an already replayed request is served here
    destination: Destination | None = None  # checked (and started) before the replay
    plain: Respond | ReplayWhenUp | None = None  # the answer without Authorization

    @classmethod
    def build(cls, target: ReplayTarget, config: Config) -> ReplayPlan:
        stamp = config.stamp
        port = config.listen.port
        transform = True
        fallback_host = ""
        payload: dict[str, object]
        machine = target.machine or target.prefer_instance
        app = ""
        if machine:
            app = target.app or stamp.app
            payload = {"app": app, ("instance" if target.machine else "prefer_instance"): machine}
            transform = app == stamp.app
            fallback_host = f"{machine}.vm.{app}.internal" if app else ""
            local = machine == stamp.machine_id
        elif target.app:
            payload = {"app": target.app}
            transform = False
            fallback_host = f"{target.app}.internal"
            local = False
        else:
            payload = {"region": target.region}
            fallback_host = f"{target.region}.{stamp.app}.internal" if stamp.app else ""
            local = bool(stamp.region) and target.region == stamp.region
        if target.placement and (not stamp.app or not (target.region or machine)):
            local = True  # not on Fly (development), or a tenant that lives everywhere
        prefix = suffix = b""
        if transform:
            payload.update({"timeout": "30s", "fallback": "force_self", "transform": {
                "set_headers": [{"name": RETRY_HEADER, "value": "true"}]}})
            text = json.dumps(payload)
            assert text.endswith("]}}")
            prefix, suffix = text[:-3].encode(), b"]}}"
        body = json.dumps(payload).encode()
        fallback = UpstreamTarget("http", fallback_host, port, "") if fallback_host else None
        destination = None
        if stamp.machine_start.enabled and machine and app and not local:
            destination = Destination(app, machine, fallback_host, port, bool(target.machine))
        headers = (("Content-Type", REPLAY_CONTENT_TYPE),)
        plain = Respond(target.status, headers, body, "fly-replay")
        return cls(target.status, headers, body, prefix, suffix, fallback, local,
                   target.methods, not target.machine and bool(target.prefer_instance),
                   destination,
                   plain if destination is None else ReplayWhenUp(plain, destination))

    def respond(self, authorization: str | None) -> Respond | ReplayWhenUp:
        """Section 17.4; the Authorization entry only when the request had one."""
        if authorization and self.auth_suffix:
            entry = json.dumps({"name": "Authorization", "value": authorization})
            body = b"%s, %s%s" % (self.auth_prefix, entry.encode(), self.auth_suffix)
            answer = Respond(self.status, self.headers, body, "fly-replay")
            return answer if self.destination is None else ReplayWhenUp(answer,
                                                                        self.destination)
        assert self.plain is not None
        return self.plain


# --- the list -------------------------------------------------------------------------------
def _literal_exact(rule: Rule) -> tuple[str, str] | None:
    """(path, location) when the rule is a redirect `^LITERAL$` → literal location."""
    if rule.pattern is None:
        return (rule.exact, rule.replacement) if rule.kind == "redirect" else None
    source = rule.pattern.pattern
    if (rule.kind != "redirect" or not source.startswith("^") or not source.endswith("$")
            or "\\" in rule.replacement or rule.pattern.flags & ~re.UNICODE):
        return None
    middle = source[1:-1]
    literal = re.sub(r"\\(.)", r"\1", middle)
    if middle != literal and re.escape(literal) != middle:
        return None
    if middle == literal and any(ch in _REGEX_META for ch in middle):
        return None
    return literal, rule.replacement


class _Placement:
    """A run of placement rules: tenant path → plan (None: the tenant lives here).

    Filled while the rule list is built, only read afterwards.
    """

    __slots__ = ("max_len", "plans")

    def __init__(self) -> None:
        self.plans: dict[str, ReplayPlan | None] = {}
        self.max_len = 0

    def add(self, prefix: str, plan: ReplayPlan) -> None:
        self.plans.setdefault(prefix, None if plan.local else plan)
        self.max_len = max(self.max_len, len(prefix))

    def find(self, path: str) -> ReplayPlan | None:
        """The plan of the longest placed tenant path that prefixes `path`."""
        plans = self.plans
        end = min(len(path), self.max_len)
        while True:
            end = path.rfind("/", 0, end)
            if end < 0:
                return None
            prefix = path[:end + 1]
            if prefix in plans:
                return plans[prefix]  # None when that tenant lives here


@dataclass(frozen=True, slots=True)
class _Step:
    rule: Rule | None  # None: an exact-redirect block or a placement block
    exact: dict[str, str] | None = None
    replay: ReplayPlan | None = None
    placement: _Placement | None = None


@dataclass(frozen=True, slots=True)
class RuleList:
    steps: tuple[_Step, ...]

    @classmethod
    def build(cls, config: Config) -> RuleList:
        steps: list[_Step] = []
        block: dict[str, str] | None = None
        placed: _Placement | None = None
        for rule in config.rules:
            literal = _literal_exact(rule)
            if literal is not None:
                placed = None
                if block is None:
                    block = {}
                    steps.append(_Step(None, block))
                block.setdefault(*literal)
                continue
            block = None
            if rule.replay is not None and rule.replay.placement:
                if placed is None:
                    placed = _Placement()
                    steps.append(_Step(None, placement=placed))
                placed.add(rule.replay.placement, ReplayPlan.build(rule.replay, config))
                continue
            placed = None
            if rule.kind == "replay":
                if rule.replay is None:
                    continue
                steps.append(_Step(rule, replay=ReplayPlan.build(rule.replay, config)))
            else:
                steps.append(_Step(rule))
        return cls(tuple(steps))

    def run(self, path: str, req: RequestInfo) -> tuple[str, Terminal | None]:
        """Walk the rules; returns (path after rewrites, terminal answer or None)."""
        for step in self.steps:
            rule = step.rule
            if rule is None:
                if step.placement is not None:
                    placed = step.placement.find(path)
                    if placed is not None:
                        return path, _replay_outcome(placed, req)
                    continue
                assert step.exact is not None
                location = step.exact.get(path)
                if location is not None:
                    return path, redirect_response(location, req.query)
                continue
            if rule.pattern is None:
                if path != rule.exact:
                    continue
            elif rule.pattern.search(path) is None:
                continue
            if rule.kind == "rewrite":
                path = expand(rule, path)
                if not path.startswith("/"):
                    path = "/" + path
            elif rule.kind == "redirect":
                return path, redirect_response(expand(rule, path), req.query)
            else:
                plan = step.replay
                assert plan is not None
                if plan.local or (plan.methods and req.method not in plan.methods):
                    continue
                return path, _replay_outcome(plan, req)
        return path, None


def _replay_outcome(plan: ReplayPlan, req: RequestInfo) -> Terminal | None:
    if replay_eligible(req):
        if req.fly_replay_failed or req.navigator_retry:
            if plan.preferred:
                return None  # Fly fell back to this machine: serving here is the contract
            return MAINTENANCE  # 17.3: Fly sent it back, or we already replayed it once
        return plan.respond(req.authorization)
    if req.navigator_retry:
        if plan.preferred:
            return None
        return MAINTENANCE  # already forwarded once by a peer that also thinks it is remote
    if plan.fallback is None:
        return None  # no FLY_APP_NAME: nowhere to forward, serve locally (reference behaviour)
    # Retries are connect attempts (nothing reached the target yet, the body waits in a
    # bounded buffer); still, only idempotent methods get them, a POST fails at once.
    return ReplayFallback(plan.fallback, FALLBACK_RETRIES if req.method in _IDEMPOTENT else 0,
                          plan.destination)
