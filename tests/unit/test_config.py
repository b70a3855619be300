"""Config loading: YAML quirks, shape errors with line numbers, resolution into runtime.Config."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from navigator.config import runtime as rt
from navigator.config.loader import (
    ConfigError,
    expand_environ,
    load_config,
    parse_listen,
    resolve,
    summarize,
    tenant_env,
)
from navigator.config.yamlfile import decode, parse_yaml


def load(tmp_path: Path, text: str, environ: Mapping[str, str] | None = None) -> rt.Config:
    path = tmp_path / "cfg.yml"
    path.write_text(textwrap.dedent(text))
    return load_config(path, environ or {}, cwd=tmp_path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def warnings_of(config: rt.Config, tmp_path: Path) -> tuple[str, ...]:
    """Warnings with the temporary directory taken off the file name."""
    return tuple(w.removeprefix(f"{tmp_path}/") for w in config.warnings)


def tenant(config: rt.Config, index: int = 0) -> rt.Tenant:
    return config.tenants[index]


# --- YAML quirks -----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "read", "expected"), [
    ("auth: {realm: off, enabled: true, htpasswd: x}", lambda c: c.auth.realm, "off"),
    ("auth: {realm: off, enabled: true, htpasswd: x}", lambda c: c.auth.enabled, False),
    ("server: {health_check: {path: /up, response: {status: 200, body: 10}}}",
     lambda c: c.health_check.response.body, b"10"),
    ("server: {health_check: {path: /up, response: {status: 200, body: yes}}}",
     lambda c: c.health_check.response.body, b"yes"),
    ("applications: {tenants: [{path: /a/, name: 010}]}", lambda c: c.tenants[0].name, "010"),
    ("applications: {tenants: [{path: /a/, name: on}]}", lambda c: c.tenants[0].name, "on"),
    ("applications: {health_check: 1:30, tenants: [{path: /a/}]}",
     lambda c: c.tenants[0].health_path, "1:30"),
    ("applications: {env: {T: '${t}'}, tenants: [{path: /a/, var: {t: 1:30}}]}",
     lambda c: dict(c.tenants[0].env)["T"], "1:30"),
    ("applications: {env: {T: '${t}'}, tenants: [{path: /a/, var: {t: 010}}]}",
     lambda c: dict(c.tenants[0].env)["T"], "010"),
    ("applications: {env: {T: '${t}'}, tenants: [{path: /a/, var: {t: 1.50}}]}",
     lambda c: dict(c.tenants[0].env)["T"], "1.50"),
    ("applications: {env: {T: '${t}'}, tenants: [{path: /a/, var: {t: True}}]}",
     lambda c: dict(c.tenants[0].env)["T"], "true"),
    ("applications: {env: {T: '${t}'}, tenants: [{path: /a/, var: {t: yes}}]}",
     lambda c: dict(c.tenants[0].env)["T"], "yes"),
    ("applications: {env: {T: 10, U: off, V: ~}, tenants: [{path: /a/}]}",
     lambda c: c.tenants[0].env, (("T", "10"), ("U", "off"), ("V", ""))),
    ("managed_processes: [{name: r, command: redis, args: [--port, 6379, no]}]",
     lambda c: c.managed_processes[0].args, ("--port", "6379", "no")),
    ("routes: {fly: {replay: [{path: ^/x/, region: ord, status: '308'}]}}",
     lambda c: c.rules[0].replay.status, 308),
    ("cable: {path: ~, enabled: }", lambda c: (c.cable.path, c.cable.enabled), ("/cable", True)),
    ("server: {listen: }", lambda c: c.listen, rt.ListenAddress("", 3000)),
    ("server: {listen: !!int 8080}", lambda c: c.listen.port, 8080),
    ("applications: {pools: {start_port: 0x1000}}", lambda c: c.pools.start_port, 4096),
    ("defaults: &d {trust_proxy: yes}\nserver: {<<: *d, listen: 1}",
     lambda c: c.trust_proxy, True),
])
def test_scalars_follow_the_field_type(tmp_path: Path, text: str,
                                       read: Callable[[rt.Config], object],
                                       expected: object) -> None:
    assert read(load(tmp_path, text)) == expected


@pytest.mark.parametrize(("word", "value"), [
    ("true", True), ("True", True), ("TRUE", True), ("yes", True), ("Yes", True), ("on", True),
    ("ON", True), ("y", True), ("Y", True), ("false", False), ("no", False), ("No", False),
    ("off", False), ("OFF", False), ("n", False), ("N", False), ("'true'", True),
])
def test_bool_words(tmp_path: Path, word: str, value: bool) -> None:
    assert load(tmp_path, f"server: {{trust_proxy: {word}}}").trust_proxy is value


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("server: [1]\n", "cfg.yml:1: server: expected a mapping, got a list"),
    ("server:\n  trust_proxy: maybe\n",
     "cfg.yml:2: server.trust_proxy: expected a boolean (true/false, yes/no, on/off), "
     "got 'maybe'"),
    ("applications:\n  pools:\n    start_port: abc\n",
     "cfg.yml:3: applications.pools.start_port: expected an integer, got 'abc'"),
    ("applications:\n  tenants:\n    - path: /a/\n    - path: /b/\n    - path: /c/\n"
     "    - path: [x]\n",
     "cfg.yml:6: applications.tenants[3].path: expected a string, got a list"),
    ("applications:\n  env:\n    A: [1]\n", "cfg.yml:3: applications.env.A: expected a string, "
     "got a list"),
    ("applications:\n  tenants: {path: /a/}\n",
     "cfg.yml:2: applications.tenants: expected a list, got a mapping"),
    ("hooks:\n  server:\n    start:\n      - args: [x]\n",
     "cfg.yml:4: hooks.server.start[0]: missing required key 'command'"),
    ("server:\n  health_check:\n    path: /up\n    response:\n      body: ok\n",
     "cfg.yml:4: server.health_check.response: missing required key 'status'"),
    ("routes:\n  redirects:\n    - from: '(x'\n      to: /\n",
     "cfg.yml:3: routes.redirects[0].from: missing closing )"),
    ("routes:\n  rewrites:\n    - {from: '\\p{Greek}', to: /}\n",
     "cfg.yml:3: routes.rewrites[0].from: Unicode class \\p{Greek} is not supported"),
    ("server:\n  listen: nope\n", "cfg.yml:2: server.listen: expected a port or host:port"),
    ("server:\n  listen: 70000\n", "cfg.yml:2: server.listen: expected a port"),
    ("applications:\n  pools:\n    default_memory_limit: lots\n",
     "cfg.yml:3: applications.pools.default_memory_limit: invalid size 'lots'"),
    ("applications:\n  tenants:\n    - {path: /a/, name: x}\n    - {path: /a, name: y}\n",
     "cfg.yml:4: applications.tenants[1].path: duplicate tenant path '/a/' (also tenants[0])"),
    ("auth:\n  enabled: true\n  htpasswd: users\n  auth_patterns:\n    - {pattern: '(x'}\n",
     "cfg.yml:5: auth.auth_patterns[0].pattern: missing closing )"),
    ("routes:\n  reverse_proxies:\n    - {prefix: /api/, target: 'ftp://x'}\n",
     "cfg.yml:3: routes.reverse_proxies[0].target: expected an http:// or https:// URL"),
    ("server:\n  listen: 3000\n  listen: 4000\n",
     "cfg.yml:3: server.listen: key 'listen' appears twice"),
    ("a: &x [1]\nserver:\n  <<: *x\n", "cfg.yml:3: server: a merge key (<<) needs a mapping"),
    ("server:\n  listen: [3000\n", "cfg.yml:3: invalid YAML"),
    ("server:\n  health_check: {path: /, response: {status: 42}}\n",
     "cfg.yml:2: server.health_check.response.status: invalid HTTP status 42"),
    ("managed_processes:\n  - {name: a, command: x}\n  - {name: a, command: y}\n",
     "cfg.yml:3: managed_processes[1].name: duplicate managed process name 'a'"),
    ("- just\n- a list\n", "cfg.yml: expected a mapping, got a list"),
])
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    error = error_of(tmp_path, text)
    assert error.removeprefix(f"{tmp_path}/").startswith(message), error


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yml: cannot read config"):
        load_config(tmp_path / "nope.yml", {})


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.listen == rt.ListenAddress("", 3000)
    assert config.tenants == ()
    assert config.rules == ()
    assert config.warnings == ()
    assert config.pid_file == Path("/tmp/navigator.pid")


# --- warnings --------------------------------------------------------------------------------
def test_unknown_keys_are_warnings_with_lines(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        server:
          listen: 3000
          bogus: 1
        suspend: {enabled: true}
        applications:
          tenants:
            - path: /a/
              nmae: x
          framework: {command: x, extra: 1}
        routes:
          fly:
            replay: [{path: ^/x, region: ord, fallback: force}]
        """)
    assert warnings_of(config, tmp_path) == (
        "cfg.yml:3: server.bogus: unknown key (ignored)",
        "cfg.yml:4: suspend: unknown key (ignored)",
        "cfg.yml:8: applications.tenants[0].nmae: unknown key (ignored)",
        "cfg.yml:9: applications.framework.extra: unknown key (ignored)",
        "cfg.yml:12: routes.fly.replay[0].fallback: unknown key (ignored)",
    )


@pytest.mark.parametrize(("text", "read", "expected", "warning"), [
    ("applications: {pools: {timeout: 10}}", lambda c: c.pools.idle_timeout, 600.0,
     "cfg.yml:1: applications.pools.timeout: missing unit in duration '10'; using the default "
     "(10m)"),
    ("applications: {pools: {timeout: 7d}}", lambda c: c.pools.idle_timeout, 7 * 86400.0, None),
    ("server: {idle: {action: stop, timeout: 7d}}", lambda c: c.idle.timeout, 600.0,
     "cfg.yml:1: server.idle.timeout: unknown unit 'd' in duration '7d'; using the default "
     "(10m)"),
    ("server: {idle: {action: stop, timeout: 1h30m}}", lambda c: c.idle.timeout, 5400.0, None),
    ("server: {idle: {action: off}}", lambda c: c.idle.action, "", None),
    ("server: {idle: {action: hibernate}}", lambda c: c.idle.action, "",
     "cfg.yml:1: server.idle.action: unknown action 'hibernate'; machine idle is off"),
    ("server: {idle: {action: command}}", lambda c: c.idle.action, "",
     "cfg.yml:1: server.idle.command: action 'command' needs a command; machine idle is off"),
    ("applications: {startup_timeout: -5s}", lambda c: c.tenants, (),
     "cfg.yml:1: applications.startup_timeout: negative duration '-5s'; using the default (5s)"),
    ("server: {bot_detection: {enabled: true, action: block}}",
     lambda c: c.bot_detection, rt.BotDetection(True, "reject"),
     "cfg.yml:1: server.bot_detection.action: unknown action 'block'; using 'reject'"),
    ("logging: {format: xml}", lambda c: c.logging.format, "text",
     "cfg.yml:1: logging.format: unknown format 'xml'; using 'text'"),
    ("routes: {fly: {replay: [{path: ^/x/}]}}", lambda c: c.rules, (),
     "cfg.yml:1: routes.fly.replay[0]: replay rule names no app, region or machine; skipped"),
    ("server: {static: {public_dir: nowhere}}", lambda c: c.static, None,
     "is not a directory; static files are off"),
    ("applications: {tenants: [{root: /x}]}", lambda c: c.tenants, (),
     "cfg.yml:1: applications.tenants[0]: tenant without a path never matches; skipped"),
])
def test_recoverable_problems_warn(tmp_path: Path, text: str,
                                   read: Callable[[rt.Config], object], expected: object,
                                   warning: str | None) -> None:
    config = load(tmp_path, text)
    assert read(config) == expected
    if warning is None:
        assert config.warnings == ()
    else:
        assert len(config.warnings) == 1
        assert warning in config.warnings[0]


# --- listen ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "address"), [
    ("3000", rt.ListenAddress("", 3000)),
    (":3000", rt.ListenAddress("", 3000)),
    ("127.0.0.1:3000", rt.ListenAddress("127.0.0.1", 3000)),
    ("localhost:8080", rt.ListenAddress("localhost", 8080)),
    ("[::1]:3000", rt.ListenAddress("::1", 3000)),
    ("0", rt.ListenAddress("", 0)),
    ("", rt.ListenAddress("", 3000)),
])
def test_listen_forms(text: str, address: rt.ListenAddress) -> None:
    assert parse_listen(text, ("server", "listen")) == address


@pytest.mark.parametrize("text", ["3000", "'3000'", "':3000'"])
def test_listen_in_yaml(tmp_path: Path, text: str) -> None:
    assert load(tmp_path, f"server: {{listen: {text}}}").listen == rt.ListenAddress("", 3000)


# --- tenant environment ----------------------------------------------------------------------
@pytest.mark.parametrize(("template", "variables", "own", "environ", "expected"), [
    ({"DB": "${db}.sqlite3"}, {"db": "boston"}, {}, {}, {"DB": "boston.sqlite3"}),
    ({"DB": "${db}-${db}"}, {"db": "x"}, {}, {}, {"DB": "x-x"}),
    ({"DB": "${missing}"}, {}, {}, {}, {"DB": "${missing}"}),
    ({"DB": "${HOME}/db"}, {}, {}, {"HOME": "/root"}, {"DB": "/root/db"}),
    ({"DB": "${HOME}/db"}, {"HOME": "/tenant"}, {}, {"HOME": "/root"}, {"DB": "/tenant/db"}),
    ({"U": "${DATABASE_URL:-sqlite://x}"}, {}, {}, {}, {"U": "sqlite://x"}),
    ({"U": "${DATABASE_URL:-sqlite://x}"}, {}, {}, {"DATABASE_URL": "pg://y"}, {"U": "pg://y"}),
    ({"U": "${DATABASE_URL:-}"}, {}, {}, {}, {"U": ""}),
    ({"A": "1", "B": "${v}"}, {"v": "t"}, {"B": "own", "C": "${HOME}"}, {"HOME": "/h"},
     {"A": "1", "B": "own", "C": "/h"}),
    ({"N": "${n}"}, {"n": 5}, {}, {}, {"N": "5"}),
    ({"F": "${f}"}, {"f": False}, {}, {}, {"F": "false"}),
])
def test_tenant_env(tmp_path: Path, template: dict[str, str], variables: dict[str, object],
                    own: dict[str, str], environ: dict[str, str],
                    expected: dict[str, str]) -> None:
    assert dict(tenant_env(template, variables, own, environ)) == expected


def test_expand_environ_leaves_unknown_names() -> None:
    assert expand_environ("${A}/${B:-b}/${C}", {"A": "a"}) == "a/b/${C}"


# --- tenant command line ---------------------------------------------------------------------
@pytest.mark.parametrize(("applications", "tenant_keys", "argv"), [
    ("", "", ("ruby", "bin/rails", "server", "-b", "0.0.0.0", "-p", "{port}")),
    ("framework: {command: python3, args: [app.py, --port, '{{port}}']}", "",
     ("python3", "app.py", "--port", "{port}")),
    ("framework: {command: node, args: [server.js, '${port}']}", "",
     ("node", "server.js", "{port}")),
    ("framework: {command: python3, args: [app.py]}", "args: [other.py, '{{ port }}']",
     ("python3", "other.py", "{port}")),
    ("framework: {command: python3, args: [app.py]}", "runtime: pypy3",
     ("pypy3", "app.py")),
    ("runtime: {django: python3}\nserver: {django: manage.py}\n"
     "args: {django: [runserver, '0.0.0.0:{{port}}']}", "framework: django",
     ("python3", "manage.py", "runserver", "0.0.0.0:{port}")),
    ("runtime: {django: python3}", "framework: django",
     ("python3", "bin/rails", "server", "-b", "0.0.0.0", "-p", "{port}")),
    ("", "runtime: bundle\nserver: exec\nargs: [puma, -p, '{{port}}']",
     ("bundle", "exec", "puma", "-p", "{port}")),
    ("framework: {command: python3, args: [a.py]}\nargs: {web: [b.py]}", "framework: web",
     ("python3", "b.py")),
])
def test_tenant_argv(tmp_path: Path, applications: str, tenant_keys: str,
                     argv: tuple[str, ...]) -> None:
    inner = textwrap.indent(tenant_keys, "      ")
    text = "applications:\n" + textwrap.indent(applications, "  ") + \
        f"\n  tenants:\n    - path: /a/\n{inner}\n"
    assert tenant(load(tmp_path, text)).argv == argv


def test_tenant_settings_inherit(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        applications:
          pools: {default_memory_limit: 512M, user: app, group: apps, timeout: 1m}
          health_check: /up
          startup_timeout: 20s
          track_websockets: false
          framework: {command: x, app_directory: apps/web, port_env_var: HTTP_PORT,
                      start_delay: 2s}
          tenants:
            - path: /a
            - path: b/
              root: /srv/b
              health_check: /healthz
              startup_timeout: 1m
              track_websockets: true
              memory_limit: 1G
              user: bob
              public_dir: public
              bot_detection: {enabled: true, action: static-only}
              hooks: {start: [{command: warm, timeout: 5s}]}
              region: ord
              machine: m1
        """)
    a, b = config.tenants
    assert (a.path, a.root, a.health_path, a.startup_timeout, a.track_websockets) == \
        ("/a/", tmp_path / "apps/web", "/up", 20.0, False)
    assert (a.memory_limit, a.user, a.group, a.port_env_var, a.start_delay) == \
        (512 * 1024**2, "app", "apps", "HTTP_PORT", 2.0)
    assert (b.path, b.root, b.health_path, b.startup_timeout, b.track_websockets) == \
        ("/b/", Path("/srv/b"), "/healthz", 60.0, True)
    assert (b.memory_limit, b.user, b.group, b.public_dir) == \
        (1024**3, "bob", "apps", Path("/srv/b/public"))
    assert b.bot_detection == rt.BotDetection(True, "static-only")
    assert b.hooks.start == (rt.Hook("warm", (), 5.0),)
    assert a.bot_detection is None
    assert config.pools.idle_timeout == 60.0


@pytest.mark.parametrize(("applications", "tenant_keys", "wait", "ready"), [
    ("", "", 5.0, 300.0),  # a slow boot is not a failure: 5 min by default
    ("startup_timeout: 90s", "", 90.0, 300.0),
    ("ready_timeout: 20s", "", 5.0, 20.0),
    ("ready_timeout: 20s", "ready_timeout: 2m", 5.0, 120.0),
    # never shorter than a request waits: the kill would turn the wait into a 500
    ("startup_timeout: 90s\n  ready_timeout: 30s", "", 90.0, 90.0),
    ("ready_timeout: 1m", "startup_timeout: 10m", 600.0, 600.0),
])
def test_ready_timeout_is_separate_from_startup_timeout(
        tmp_path: Path, applications: str, tenant_keys: str, wait: float, ready: float) -> None:
    config = load(tmp_path, f"""\
applications:
  {applications}
  tenants:
    - path: /a/
      {tenant_keys}
""")
    assert (tenant(config).startup_timeout, tenant(config).ready_timeout) == (wait, ready)
    assert config.warnings == ()


def test_before_start_hooks_default_and_per_tenant(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        hooks:
          tenant:
            before_start: [{command: bin/rails, args: [db:prepare], timeout: 2m}]
        applications:
          tenants:
            - path: /a/
              hooks: {before_start: [{command: seed, args: ["${name}"]}]}
        """)
    assert config.tenant_hooks.before_start == (rt.Hook("bin/rails", ("db:prepare",), 120.0),)
    assert tenant(config).hooks.before_start == (rt.Hook("seed", ("${name}",), None),)
    assert config.warnings == ()


@pytest.mark.parametrize(("cable", "paths", "shadowed"), [
    ("", ["/"], [0]),  # a root-mounted Rails app: its Action Cable never sees /cable
    ("", ["/a/", ""], []),
    ("", ["/a/", "/"], [1]),
    ("cable: {enabled: false}", ["/"], []),
    ("cable: {path: /a/cable}", ["/a/", "/"], [0, 1]),
    ("cable: {path: /a/cable}", ["/b/"], []),
])
def test_a_tenant_over_the_cable_path_is_a_warning(tmp_path: Path, cable: str,
                                                   paths: list[str],
                                                   shadowed: list[int]) -> None:
    tenants = "".join(f"\n    - path: '{path}'" for path in paths)
    config = load(tmp_path, f"{cable}\napplications:\n  tenants:{tenants}\n")
    found = [w for w in warnings_of(config, tmp_path) if "covers the cable path" in w]
    assert [int(w.split("tenants[")[1].split("]")[0]) for w in found] == shadowed
    for warning in found:
        assert "set cable.enabled: false or move cable.path" in warning
        assert warning.startswith("cfg.yml:")  # placed on the tenant's line


@pytest.mark.parametrize(("root_path", "path", "name", "expected"), [
    ("", "/showcase/2025/boston/", "", "2025/boston"),
    ("", "/shop/", "", "shop"),
    ("", "/", "", ""),
    ("/showcase", "/showcase/2025/boston/", "", "2025/boston"),
    ("/apps", "/showcase/x/", "", "showcase/x"),
    ("", "/a/b/", "custom", "custom"),
])
def test_tenant_names(tmp_path: Path, root_path: str, path: str, name: str,
                      expected: str) -> None:
    text = f"server: {{root_path: '{root_path}'}}\napplications:\n  tenants:\n" \
           f"    - {{path: '{path}', name: '{name}'}}\n"
    assert tenant(load(tmp_path, text)).name == expected


@pytest.mark.parametrize(("root_path", "tenants", "names", "warnings"), [
    # Explicit names that repeat: the reference never refuses these (it ignores `name`).
    ("", "[{path: /a/, name: x}, {path: /b/, name: x}, {path: /c/, name: x}]",
     ("x", "x-2", "x-3"),
     ("cfg.yml:3: applications.tenants[1].name: tenant name 'x' is also tenants[0]'s; "
      "this tenant is named 'x-2' (logs, metrics, cgroups)",
      "cfg.yml:3: applications.tenants[2].name: tenant name 'x' is also tenants[0]'s; "
      "this tenant is named 'x-3' (logs, metrics, cgroups)")),
    # Derived names that repeat: /x/demo/ below the root path and /demo/ outside it.
    ("/x", "[{path: /x/demo/}, {path: /demo/}]", ("demo", "demo-2"),
     ("cfg.yml:3: applications.tenants[1].path: tenant name 'demo' is also tenants[0]'s; "
      "this tenant is named 'demo-2' (logs, metrics, cgroups)",)),
    # A made-up name never takes a name another tenant asked for.
    ("", "[{path: /a/, name: x}, {path: /b/, name: x}, {path: /c/, name: x-2}]",
     ("x", "x-3", "x-2"), None),
    # Two empty derived names (the root path itself and /).
    ("/x", "[{path: /x/}, {path: /}]", ("", "tenant-2"), None),
])
def test_repeated_tenant_names_are_made_unique(tmp_path: Path, root_path: str, tenants: str,
                                               names: tuple[str, ...],
                                               warnings: tuple[str, ...] | None) -> None:
    config = load(tmp_path, f"server: {{root_path: '{root_path}'}}\napplications:\n"
                            f"  tenants: {tenants}\n")
    assert tuple(t.name for t in config.tenants) == names
    if warnings is not None:
        assert warnings_of(config, tmp_path) == warnings
    else:  # one renaming (a tenant at / also draws the cable-shadowing warning)
        assert sum("tenant name" in warning for warning in config.warnings) == 1


# --- rules -----------------------------------------------------------------------------------
def test_rule_order_and_slash_redirects(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        server: {root_path: /showcase}
        routes:
          rewrites: [{from: '^/old/(.*)', to: '/new/$1'}]
          redirects: [{from: '^/$', to: /showcase/}]
          fly:
            replay:
              - {path: '^/showcase/2025/sydney/', region: syd}
              - {path: '^/pdf/', app: pdf, region: ord, methods: [get, head]}
              - {path: '^/m/', machine: abc123, app: other}
        applications:
          tenants:
            - path: /showcase/2025/boston/
            - path: /showcase/2025/raleigh
        """)
    kinds = [(r.kind, r.pattern.pattern if r.pattern else f"exactly {r.exact}", r.replacement)
             for r in config.rules]
    assert kinds == [
        ("redirect", "^/$", "/showcase/"),
        ("rewrite", "^/old/(.*)", "/new/\\g<1>"),
        ("replay", "^/showcase/2025/sydney/", ""),
        ("replay", "^/pdf/", ""),
        ("replay", "^/m/", ""),
        ("redirect", "exactly /showcase", "/showcase/"),
        ("redirect", "exactly /showcase/2025/boston", "/showcase/2025/boston/"),
        ("redirect", "exactly /showcase/2025/raleigh", "/showcase/2025/raleigh/"),
    ]
    assert config.rules[2].replay == rt.ReplayTarget(region="syd")
    assert config.rules[3].replay == rt.ReplayTarget(app="pdf",
                                                      methods=frozenset({"GET", "HEAD"}))
    assert config.rules[4].replay == rt.ReplayTarget(app="other", machine="abc123")
    rewrite = config.rules[1]
    assert rewrite.pattern.sub(rewrite.replacement, "/old/a/b") == "/new/a/b"


def test_tenant_at_root_gets_no_slash_redirect(tmp_path: Path) -> None:
    config = load(tmp_path, "applications: {tenants: [{path: /}, {path: /x/}]}")
    assert [(r.pattern, r.exact, r.replacement) for r in config.rules] == [(None, "/x", "/x/")]


# --- proxies, static, auth, maintenance --------------------------------------------------------
def test_reverse_proxies(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        routes:
          reverse_proxies:
            - name: api
              prefix: /api/
              target: http://127.0.0.1:9000/v1
              strip_path: true
              headers: {X-Real-IP: $remote_addr}
              response_headers: {Access-Control-Allow-Origin: '*'}
            - path: '^/docs/(\\w+)'
              target: https://docs.example.com/$1
              websocket: yes
            - {prefix: /ws/, target: 'ws://localhost'}
        """)
    api, docs, ws = config.reverse_proxies
    assert (api.name, api.prefix, api.pattern, api.strip_path) == ("api", "/api/", None, True)
    assert api.target == rt.UpstreamTarget("http", "127.0.0.1", 9000, "/v1")
    assert api.headers == (("X-Real-IP", "$remote_addr"),)
    assert api.target_template == ""
    assert docs.pattern is not None
    assert docs.pattern.search("/docs/guide")
    assert docs.target == rt.UpstreamTarget("https", "docs.example.com", 443, "/$1")
    assert docs.target_template == "https://docs.example.com/$1"
    assert docs.websocket
    assert ws.target == rt.UpstreamTarget("http", "localhost", 80, "")


def test_static_and_maintenance(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    config = load(tmp_path, """\
        server:
          static:
            allowed_extensions: [.css, js]
            try_files: [index.html, .html]
            normalize_trailing_slashes: true
            cache_control:
              default: 1h
              overrides:
                - {path: /assets/, max_age: 1y, immutable: true}
                - {path: /assets/fonts/, max_age: 0}
                - {path: /x/, max_age: ''}
        maintenance: {enabled: true, page: /maint.html}
        """)
    static = config.static
    assert static is not None
    assert static.public_dir == tmp_path / "public"
    assert static.allowed_extensions == frozenset({"css", "js"})
    assert static.try_files == ("index.html", ".html")
    assert static.normalize_trailing_slashes
    assert static.cache_default == 3600
    assert static.cache_overrides == (rt.CacheOverride("/assets/fonts/", 0, False),
                                      rt.CacheOverride("/assets/", 365 * 86400, True))
    assert config.maintenance == rt.Maintenance(True, tmp_path / "public/maint.html")
    assert len(config.warnings) == 1
    assert "overrides[2]" in config.warnings[0]


@pytest.mark.parametrize(("page", "expected"), [
    ("", None), ("/503.html", "public/503.html"), ("pages/down.html", "pages/down.html"),
])
def test_maintenance_page_paths(tmp_path: Path, page: str, expected: str | None) -> None:
    config = load(tmp_path, f"maintenance: {{page: '{page}'}}")
    assert config.maintenance.page == (None if expected is None else tmp_path / expected)


@pytest.mark.parametrize(("auth", "enabled"), [
    ("{enabled: true, htpasswd: users}", True),
    ("{enabled: true}", False),
    ("{enabled: false, htpasswd: users}", False),
    ("{enabled: true, htpasswd: users, realm: 'off'}", False),
])
def test_auth_enabled_is_folded(tmp_path: Path, auth: str, enabled: bool) -> None:
    assert load(tmp_path, f"auth: {auth}").auth.enabled is enabled


def test_auth_settings(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        auth:
          enabled: true
          htpasswd: db/htpasswd
          public_paths: [/assets/, '*.css']
          auth_patterns: [{pattern: '^/public/\\d+', action: 'off'}]
        """)
    auth = config.auth
    assert (auth.realm, auth.htpasswd) == ("Restricted", tmp_path / "db/htpasswd")
    assert auth.public_paths == ("/assets/", "*.css")
    assert auth.auth_patterns[0].action == "off"
    assert auth.auth_patterns[0].pattern.search("/public/12")


@pytest.mark.parametrize("auth", [
    "enabled: false, htpasswd: users", "enabled: true", "realm: Restricted",
    "enabled: true, htpasswd: users, realm: 'off'"])
def test_bad_auth_pattern_warns_while_auth_is_off(tmp_path: Path, auth: str) -> None:
    """The reference does not read auth_patterns while auth is off, so a bad one loads."""
    config = load(tmp_path, f"""\
        auth: {{{auth},
               auth_patterns: [{{pattern: '^/ok/', action: 'off'}},
                               {{pattern: '(x', action: 'off'}}]}}
        """)
    assert config.auth.enabled is False
    assert [p.pattern.pattern for p in config.auth.auth_patterns] == ["^/ok/"]
    assert warnings_of(config, tmp_path) == (
        "cfg.yml:3: auth.auth_patterns[1].pattern: missing closing ) at offset 2 in '(x'; "
        "ignored while auth is off",)


# --- extensions and the rest ---------------------------------------------------------------------
def test_extensions_and_identity(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        server:
          listen: 127.0.0.1:8080
          pid_file: run/nav.pid
          access_log: false
          limits: {max_body_bytes: 10M, header_timeout: 10s, max_header_count: 50,
                   websocket_idle_timeout: 1h, max_request_line: 4K}
          metrics: {enabled: true, listen: '127.0.0.1:9100'}
          idle: {action: command, command: [sudo, poweroff], timeout: 30m,
                 count_websockets: no}
        stamps: {dns_servers: ['127.0.0.1:5353']}
        """, environ={"FLY_APP_NAME": "app", "FLY_REGION": "ord", "FLY_MACHINE_ID": "m1"})
    assert config.pid_file == tmp_path / "run/nav.pid"
    assert config.logging.access_log is False
    assert config.limits == rt.Limits(max_body_bytes=10 * 1024**2, header_timeout=10.0,
                                      max_header_count=50, websocket_idle_timeout=3600.0,
                                      max_request_line=4096)
    assert config.metrics == rt.MetricsSettings(True, "/_navigator/metrics",
                                                rt.ListenAddress("127.0.0.1", 9100))
    assert config.idle == rt.IdleSettings("command", 1800.0, ("sudo", "poweroff"), "/.fly/api",
                                          False)
    assert config.stamp == rt.StampSettings("app", "ord", "m1", ("127.0.0.1:5353",))


@pytest.mark.parametrize(("text", "enabled", "file"), [
    # Older reference versions wrote the access log to the file named here.
    ("logging: {access_log: log/access.log}", True, "log/access.log"),
    ("server: {access_log: /var/log/navigator/access.log}", True,
     "/var/log/navigator/access.log"),
    ("server: {access_log: off}\nlogging: {access_log: a.log}", True, "a.log"),
    ("server: {access_log: a.log}\nlogging: {access_log: no}", False, None),
    ("logging: {access_log: yes}", True, None),
    ("logging: {access_log: ''}", True, None),
    ("logging: {access_log: ~}", True, None),
])
def test_access_log_is_a_flag_or_a_file(tmp_path: Path, text: str, enabled: bool,
                                        file: str | None) -> None:
    config = load(tmp_path, text)
    assert config.logging.access_log is enabled
    assert config.logging.access_log_file == (None if file is None else tmp_path / file)
    assert config.warnings == ()


def test_access_log_of_another_shape_is_refused(tmp_path: Path) -> None:
    assert error_of(tmp_path, "logging:\n  access_log: [a]\n").removeprefix(
        f"{tmp_path}/") == "cfg.yml:2: logging.access_log: expected a boolean or a string, " \
        "got a list"


def test_only_the_first_yaml_document_is_read(tmp_path: Path) -> None:
    """The reference reads the first document; what follows (even broken YAML) is ignored."""
    config = load(tmp_path, """\
        server:
          listen: 4000
          bogus: 1
        ---
        server:
          listen: [5000
        """)
    assert config.listen.port == 4000
    assert warnings_of(config, tmp_path) == (
        "cfg.yml:4: a second YAML document starts here; it is ignored (only the first "
        "document of a file is read)",
        "cfg.yml:3: server.bogus: unknown key (ignored)")


@pytest.mark.parametrize("text", ["server: {listen: 4000}\n...\n",
                                  "--- \nserver: {listen: 4000}\n"])
def test_one_document_with_markers_warns_nothing(tmp_path: Path, text: str) -> None:
    config = load(tmp_path, text)
    assert (config.listen.port, config.warnings) == (4000, ())


def test_keys_the_reference_documents_but_does_not_read(tmp_path: Path) -> None:
    """What docs/migration.md says about them: the file loads, each is a warning, none has
    an effect (the old rule format leaves a rule with no `from`, which is skipped)."""
    config = load(tmp_path, """\
        suspend: {enabled: true, idle_timeout: 10m}
        defaults: {x: 1}
        frameworks: {rails: {command: x}}
        rewrite_rules: [{pattern: "^/a", replacement: "/b"}]
        routes:
          rewrites:
            - {pattern: "^/old/(.*)", replacement: "/new/$1", redirect: true, status: 301}
        applications:
          global_env: {RAILS_ENV: production}
          tenants:
            - {path: /a/, working_dir: /srv/a}
        """)
    assert warnings_of(config, tmp_path) == (
        "cfg.yml:1: suspend: unknown key (ignored)",
        "cfg.yml:2: defaults: unknown key (ignored)",
        "cfg.yml:3: frameworks: unknown key (ignored)",
        "cfg.yml:4: rewrite_rules: unknown key (ignored)",
        "cfg.yml:7: routes.rewrites[0].pattern: unknown key (ignored)",
        "cfg.yml:7: routes.rewrites[0].replacement: unknown key (ignored)",
        "cfg.yml:7: routes.rewrites[0].redirect: unknown key (ignored)",
        "cfg.yml:7: routes.rewrites[0].status: unknown key (ignored)",
        "cfg.yml:9: applications.global_env: unknown key (ignored)",
        "cfg.yml:11: applications.tenants[0].working_dir: unknown key (ignored)",
        "cfg.yml:7: routes.rewrites[0]: rule without 'from'; skipped",
    )
    (only,) = config.tenants
    assert (only.root, only.env, only.argv[0]) == (tmp_path, (), "ruby")
    assert [rule.kind for rule in config.rules] == ["redirect"]  # only the slash redirect
    assert config.idle.action == ""


def test_hooks_managed_processes_logging_cgi(tmp_path: Path) -> None:
    script = tmp_path / "reload.sh"
    script.write_text("#!/bin/sh\n")
    config = load(tmp_path, f"""\
        hooks:
          server:
            ready: [{{command: bin/prep, args: [a], timeout: 2m, reload_config: next.yml}}]
            stop: [{{command: bin/backup}}]
          tenant:
            stop: [{{command: bin/save, timeout: ''}}]
        managed_processes:
          - {{name: redis, command: redis-server, working_dir: var, env: {{A: b}},
              auto_restart: true, start_delay: 1s}}
        logging: {{format: json, file: 'log/{{{{app}}}}.log', vector: {{enabled: true,
                  socket: /tmp/v.sock, config: v.toml}}}}
        server:
          cgi_scripts:
            - {{path: /reload, script: {script}, method: post, allowed_users: [' bob '],
                timeout: 5s}}
            - {{path: /gone, script: missing.sh}}
        """)
    assert config.server_hooks.ready == (rt.Hook("bin/prep", ("a",), 120.0, "next.yml"),)
    assert config.server_hooks.stop == (rt.Hook("bin/backup"),)
    assert config.tenant_hooks.stop == (rt.Hook("bin/save"),)
    assert config.managed_processes == (rt.ManagedProcess(
        "redis", "redis-server", (), tmp_path / "var", (("A", "b"),), True, 1.0),)
    assert config.logging == rt.LoggingSettings(
        "json", "log/{{app}}.log", True, rt.VectorSettings(True, "/tmp/v.sock", "v.toml"))
    (cgi,) = config.cgi_scripts
    assert (cgi.path, cgi.script, cgi.method, cgi.allowed_users, cgi.timeout) == \
        ("/reload", script, "POST", frozenset({"bob"}), 5.0)
    assert any("cgi_scripts[1].script" in w for w in config.warnings)


def test_health_check_response_defaults_content_type(tmp_path: Path) -> None:
    config = load(tmp_path, "server: {health_check: {path: /up, response: {status: 200, "
                            "body: OK, headers: {X-A: b}}}}")
    assert config.health_check == rt.HealthCheck("/up", rt.HealthResponse(
        200, b"OK", (("Content-Type", "text/plain"), ("X-A", "b"))))


def test_resolve_without_file(tmp_path: Path) -> None:
    raw, unknown = decode(parse_yaml("server: {listen: 1, junk: 2}\n").data)
    config = resolve(raw, tmp_path / "x.yml", {}, cwd=tmp_path)
    assert unknown == [("server", "junk")]
    assert config.listen.port == 1
    assert config.source == tmp_path / "x.yml"


SHOWCASE = """\
server:
  listen: 9999
  hostname: localhost
  root_path: /showcase
  static:
    public_dir: public
    allowed_extensions: [html, css, js, png, jpg, svg, pdf]
    try_files: [index.html, .html, .htm]
    cache_control:
      overrides:
        - {path: /showcase/assets/, max_age: 24h}
  idle:
    action: suspend
    timeout: 20m
auth:
  enabled: true
  realm: Showcase
  htpasswd: db/htpasswd
  public_paths: [/showcase/assets/, /showcase/docs/, "*.css", "*.js"]
  auth_patterns:
    - pattern: "^/showcase/2025/(?:boston|raleigh)/?$"
      action: "off"
routes:
  redirects:
    - from: ^/(showcase)?$
      to: /showcase/studios/
  rewrites:
    - from: ^/assets/(.*)
      to: /showcase/assets/$1
  fly:
    replay:
      - path: "^/showcase/2025/(?:sydney|melbourne)/"
        region: syd
        status: 307
      - path: "^/showcase/.+\\\\.pdf$"
        app: smooth-pdf
applications:
  pools: {max_size: 10, timeout: 5m, start_port: 4000}
  health_check: /up
  env:
    RAILS_APP_DB: "${db}"
    RAILS_APP_OWNER: "${owner}"
    RAILS_STORAGE: /data/storage
    RAILS_RELATIVE_URL_ROOT: /showcase
    PIDFILE: "/tmp/pids/${db}.pid"
  tenants:
    - path: /showcase/2025/boston/
      var: {db: 2025-boston, owner: Boston Dance}
    - path: /showcase/2025/raleigh/
      var: {db: 2025-raleigh, owner: Raleigh}
      env: {RAILS_LOG_LEVEL: debug}
    - path: /showcase/studios/
      var: {db: index, owner: Studios}
managed_processes:
  - name: redis
    command: redis-server
    auto_restart: true
hooks:
  server:
    ready:
      - command: /rails/script/nav_initialization.rb
        timeout: 5m
logging:
  format: json
"""


def test_showcase_like_config(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    config = load(tmp_path, SHOWCASE, environ={"FLY_APP_NAME": "smooth"})
    assert config.warnings == ()
    assert config.listen.port == 9999
    assert config.root_path == "/showcase/"
    assert [t.name for t in config.tenants] == ["2025/boston", "2025/raleigh", "studios"]
    boston = dict(config.tenants[0].env)
    assert boston["RAILS_APP_DB"] == "2025-boston"
    assert boston["RAILS_APP_OWNER"] == "Boston Dance"
    assert boston["PIDFILE"] == "/tmp/pids/2025-boston.pid"
    assert dict(config.tenants[1].env)["RAILS_LOG_LEVEL"] == "debug"
    assert config.tenants[0].argv[:2] == ("ruby", "bin/rails")
    assert config.auth.enabled
    assert config.auth.realm == "Showcase"
    assert config.idle.action == "suspend"
    assert config.idle.timeout == 1200.0
    assert [r.kind for r in config.rules] == ["redirect", "rewrite", "replay", "replay",
                                              "redirect", "redirect", "redirect", "redirect"]
    assert config.rules[3].pattern.search("/showcase/2025/boston/heat.pdf")
    assert config.rules[3].replay == rt.ReplayTarget(app="smooth-pdf")
    redirect = config.rules[0]
    assert redirect.pattern.sub(redirect.replacement, "/showcase") == "/showcase/studios/"
    assert config.pools.max_size == 10
    assert config.pools.idle_timeout == 300.0
    assert config.stamp.app == "smooth"
    text = summarize(config)
    assert "tenants 3" in text
    assert "listen *:9999" in text
    assert "warnings 0" in text
    assert "/showcase/2025/boston/" in text
    assert "replay" in text


def test_check_prints_replacements_as_written(tmp_path: Path) -> None:
    """`navigator check` shows `$1`, not Python's `\\g<1>`, and the regex as written."""
    config = load(tmp_path, r"""
        routes:
          redirects: [{from: '^/(\w+)/(?P<rest>.*)$', to: '/new/$1/${rest}?a=$$b'}]
          rewrites: [{from: '^/old/(.*)', to: '/b/${1}'}]
          fly: {replay: [{path: '^/x/\d+', region: ams}]}
        """)
    rules = [line.split() for line in summarize(config).splitlines()
             if line.startswith(("  redirect", "  rewrite", "  replay"))]
    assert rules == [["redirect", r"^/(\w+)/(?P<rest>.*)$", "->", "/new/$1/${rest}?a=$$b"],
                     ["rewrite", "^/old/(.*)", "->", "/b/${1}"],
                     ["replay", r"^/x/\d+", "->", "ams"]]


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (("applications", "tenants", 3, "path"), "applications.tenants[3].path"),
        (("applications", "env", "DATABASE_URL"), "applications.env.DATABASE_URL"),
        (("routes", "reverse_proxies", 0, "response_headers", " "),
         'routes.reverse_proxies[0].response_headers[" "]'),
        (("server", "health_check", "response", "headers", "a.b:c"),
         'server.health_check.response.headers["a.b:c"]'),
    ],
)
def test_key_paths_quote_keys_that_are_not_plain_words(key: tuple[str | int, ...],
                                                       text: str) -> None:
    from navigator.config.schema import dotted

    assert dotted(key) == text


@pytest.mark.parametrize(("setting", "environ", "expected"), [
    ("", {}, False),  # unset, not on Fly: the peer is the client
    ("", {"FLY_APP_NAME": "myapp"}, True),  # unset on Fly: every peer is Fly's proxy
    ("server: {trust_proxy: false}", {"FLY_APP_NAME": "myapp"}, False),  # as written wins
    ("server: {trust_proxy: true}", {}, True),
    ("server: {trust_proxy: yes}", {}, True),  # the YAML 1.1 word the reference accepts
    ("server: {trust_proxy: off}", {"FLY_APP_NAME": "myapp"}, False),
])
def test_trust_proxy_defaults_to_on_behind_flys_proxy(tmp_path: Path, setting: str,
                                                      environ: dict[str, str],
                                                      expected: bool) -> None:
    assert load(tmp_path, setting + "\n", environ).trust_proxy is expected


def test_prefix_options_inherit_and_precompute_their_wire_values(tmp_path: Path) -> None:
    config = load(tmp_path, """
        applications:
          strip_prefix: true
          scope_cookies: true
          script_name: true
          tenants:
            - path: /a b/
            - path: /plain/
              strip_prefix: false
              scope_cookies: false
              script_name: false
            - path: /own/
              env: {SCRIPT_NAME: /mine}
            - path: /
        """)
    spaced, plain, own, root = config.tenants
    assert (spaced.strip_prefix, spaced.forwarded_prefix, spaced.cookie_prefix) == \
        (True, b"/a%20b", b"/a%20b")
    assert ("SCRIPT_NAME", "/a b") in spaced.env
    assert (plain.strip_prefix, plain.forwarded_prefix, plain.cookie_prefix) == \
        (False, b"", b"")
    assert not any(name == "SCRIPT_NAME" for name, _ in plain.env)
    assert own.env == (("SCRIPT_NAME", "/mine"),)  # the operator's value wins
    assert (root.strip_prefix, root.env) == (False, ())  # nothing to strip at "/"


def test_probe_under_the_prefix_and_5xx_readiness_inherit(tmp_path: Path) -> None:
    config = load(tmp_path, """
        applications:
          health_check: /up
          prefix_health_check: true
          ready_on_5xx: false
          tenants:
            - path: /a/
            - path: /b/
              health_check: healthz
            - path: /c/
              prefix_health_check: false
              ready_on_5xx: true
        """)
    a, b, c = config.tenants
    assert (a.health_path, a.ready_on_5xx) == ("/a/up", False)
    assert b.health_path == "/b/healthz"
    assert (c.health_path, c.ready_on_5xx) == ("/up", True)
    assert load(tmp_path, "applications: {tenants: [{path: /d/}]}").tenants[0].ready_on_5xx


# --- process pools (issue 17) ------------------------------------------------------------------
def test_pool_keys_default_to_one_process_as_before(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        applications:
          startup_timeout: 7s
          tenants: [{path: /a}]
        """)
    assert tenant(config).capacity == rt.Capacity(
        max_processes=1, min_instances=0, max_concurrency=0, max_queue=100,
        queue_timeout=7.0, idle_timeout=None, max_requests=0, memory_soft_limit=None,
        drain_timeout=300.0)


def test_pool_keys_inherit_and_override(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        applications:
          pools: {max_processes: 4, min_instances: 1, max_concurrency: 2, max_queue: 20,
                  queue_timeout: 3s, max_requests: 1000, memory_soft_limit: 300M,
                  drain_timeout: 1m}
          tenants:
            - path: /a
            - path: /b
              max_processes: 2
              min_instances: 2
              max_concurrency: 0
              max_queue: 0
              queue_timeout: 500ms
              idle_timeout: 300
              max_requests: 0
              memory_soft_limit: 1G
            - path: /c
              idle_timeout: 5m
        """)
    a, b, c = config.tenants
    assert a.capacity == rt.Capacity(4, 1, 2, 20, 3.0, None, 1000, 300 * 1024**2, 60.0)
    assert b.capacity == rt.Capacity(2, 2, 0, 0, 0.5, 300.0, 0, 1024**3, 60.0)
    assert c.capacity.idle_timeout == 300.0


@pytest.mark.parametrize(("keys", "message"), [
    ("pools: {max_processes: 0}", "applications.pools.max_processes: max_processes must be "
                                  "at least 1, not 0"),
    ("pools: {max_processes: 2, min_instances: 3}", "applications.pools.min_instances: "
                                                    "min_instances (3) is more than "
                                                    "max_processes (2)"),
    ("tenants: [{path: /a, max_queue: -1}]", "applications.tenants[0].max_queue: max_queue "
                                              "must be at least 0, not -1"),
    ("tenants: [{path: /a, idle_timeout: -5}]", "applications.tenants[0].idle_timeout: "
                                                "idle_timeout must not be negative"),
    ("tenants: [{path: /a, memory_soft_limit: lots}]", "applications.tenants[0]."
                                                       "memory_soft_limit"),
])
def test_bad_pool_keys_name_the_key(tmp_path: Path, keys: str, message: str) -> None:
    assert message in error_of(tmp_path, f"applications:\n  {keys}\n")
