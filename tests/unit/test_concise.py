"""The concise format (`version: 2`): path patterns, tenants, presets, placement, and errors
that name the line and key the person wrote. Each file is loaded through the same
`load_config` as the reference format, so the assertions are on the runtime Config."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from navigator.config import patterns
from navigator.config import runtime as rt
from navigator.config.loader import ConfigError, load_config
from navigator.config.presets import PRESETS


def load(tmp_path: Path, text: str) -> rt.Config:
    path = tmp_path / "cfg.yml"
    path.write_text("version: 2\n" + textwrap.dedent(text))
    return load_config(path, {}, cwd=tmp_path)


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value).removeprefix(f"{tmp_path}/")




# --- patterns --------------------------------------------------------------------------------
@pytest.mark.parametrize(("pattern", "regex", "matches", "misses"), [
    ("/up", "^/up$", ["/up"], ["/up/", "/upx", "/x/up"]),
    ("/assets/**", "^/assets/(.*)$", ["/assets/", "/assets/a/b.css"], ["/assets", "/x/assets/"]),
    ("/*/list1/", "^/([^/]*)/list1/$", ["/sam/list1/"], ["/a/b/list1/"]),
    ("/{sam,sally}{,/}", "^/(sam|sally)(|/)$", ["/sam", "/sally/"], ["/bob", "/sam//"]),
    ("/a.b+c", r"^/a\.b\+c$", ["/a.b+c"], ["/aXb+c"]),
    ("^/(x|y)/?$", "^/(x|y)/?$", ["/x", "/y/"], ["/z"]),
    ("~/sally/", "/sally/", ["/sally/", "/x/sally/1"], ["/sally"]),
])
def test_pattern_to_regex(pattern: str, regex: str, matches: list[str],
                          misses: list[str]) -> None:
    assert patterns.to_regex(pattern) == regex
    compiled = re.compile(regex)
    assert all(compiled.search(path) for path in matches)
    assert not any(compiled.search(path) for path in misses)


@pytest.mark.parametrize(("regex", "written"), [
    ("^/up$", "/up"),
    ("^/assets/(.*)$", "/assets/**"),
    ("^/(sam|sally)(|/)$", "/{sam,sally}{,/}"),
    (r"^/a\.b$", "/a.b"),
    ("^/(sam|sally)/?$", "^/(sam|sally)/?$"),  # no glob for `?`: stays a regex
    ("/sally/", "~/sally/"),  # unanchored: search semantics kept with `~`
    ("^/a$|^/b$", "^/a$|^/b$"),
])
def test_regex_written_as_glob_when_one_fits(regex: str, written: str) -> None:
    assert patterns.written(regex) == written
    assert patterns.to_regex(written) == regex


@pytest.mark.parametrize("pattern", ["/{a,b", "/a}", "/{a,*}"])
def test_bad_globs(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"glob|wildcards"):
        patterns.to_regex(pattern)


# --- tenants ---------------------------------------------------------------------------------
def test_tenant_map_long_form_and_pattern_list(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app:
          command: run
          env: {DB: "${owner}-${list}", WHO: "${owner}"}
        tenants:
          /sam/list1/: {owner: sam, list: list1}
          /sally/: {var: {owner: sally, list: all}, name: sal, env: {WHO: Sally}}
          /bare/:
          pattern: /{owner}/{list}/
          list: [bob/a, {owner: eve, list: b, extra: x}]
        """)
    assert [(t.path, t.name) for t in config.tenants] == [
        ("/sam/list1/", "sam/list1"), ("/sally/", "sal"), ("/bare/", "bare"),
        ("/bob/a/", "bob/a"), ("/eve/b/", "eve/b")]
    envs = [dict(t.env) for t in config.tenants]
    assert envs[0] == {"DB": "sam-list1", "WHO": "sam"}
    assert envs[1] == {"DB": "sally-all", "WHO": "Sally"}
    assert envs[3] == {"DB": "bob-a", "WHO": "bob"}


def test_prefix_variable_is_the_tenant_path(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app: {command: run, env: {ROOT: "${prefix}"}}
        tenants: {/shop/a/: {}, /b/: {prefix: /own}}
        """)
    assert [dict(t.env)["ROOT"] for t in config.tenants] == ["/shop/a", "/own"]


# --- errors: line, key, what was expected ----------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("app:\n  preset: flask\n",
     "cfg.yml:3: app.preset: expected one of generic, rails, django, fastapi, node, got 'flask'"),
    ("app: {command: x}\ntenants:\n  sam: {a: b}\n",
     "cfg.yml:4: tenants.sam: expected a tenant path beginning with '/'"),
    ("app: {command: x}\ntenants:\n  /a/:\n    owner: [sam]\n",
     "cfg.yml:5: tenants[\"/a/\"].owner: expected a variable's value (a scalar)"),
    ("app: {command: x}\ntenants:\n  pattern: /{o}/{l}/\n  list: [sam]\n",
     "cfg.yml:5: tenants.list[0]: expected 2 value(s) separated by '/' for {o}/{l}, got 'sam'"),
    ("app: {command: x}\ntenants:\n  pattern: /shop/\n  list: [a]\n",
     "cfg.yml:4: tenants.pattern: expected at least one {name} placeholder"),
    ("tenants: {/a/: {}}\n", "cfg.yml: app.command: missing the command that starts the app"),
    ("app: {module: x}\n", "cfg.yml:2: app.command: missing the command that starts the app"),
    ("app:\n  command: x\n  prefix: drop\n",
     "cfg.yml:4: app.prefix: expected one of full, strip, script_name, got 'drop'"),
    ("app:\n  command: x\n  cookies: none\n", "cfg.yml:4: app.cookies: expected scoped or shared"),
    ("app:\n  command: \"x 'unclosed\"\n", "cfg.yml:3: app.command: cannot split the command"),
    ("app:\n  command: x\n  health_under_prefix: maybe\n",
     "cfg.yml:4: app.health_under_prefix: expected a boolean"),
    ("app: {command: x}\nredirects:\n  /{a,b: /x/\n",
     "cfg.yml:4: redirects[\"/{a,b\"]: '{' without '}' in the glob"),
    ("app: {command: x}\nredirects:\n  /a/: [x]\n",
     "cfg.yml:4: redirects[\"/a/\"]: expected the target path"),
    ("app: {command: x}\nredirects:\n  ^/(a: /x/\n",
     "cfg.yml:4: redirects[\"^/(a\"]: missing closing )"),
    ("app: {command: x}\ntenants:\n  /a/: {}\n  pattern: /{x}/\n  list: [a]\n",
     "cfg.yml:6: tenants.list[0].path: duplicate tenant path '/a/'"),
    ("app: {command: x}\ntenants: {/a/: {}}\nplacement:\n  /b/**: {region: ams}\n",
     "cfg.yml:5: placement[\"/b/**\"]: matches no tenant path"),
    ("app: {command: x}\ntenants: {/a/: {}}\nplacement:\n  /a/: {region: not_a_region}\n",
     "cfg.yml:5: placement[\"/a/\"].region: 'not_a_region' is not a valid Fly region"),
    ("app: {command: x}\nproxies:\n  /api/: ftp://x\n",
     "cfg.yml:4: proxies[\"/api/\"].target: expected an http:// or https:// URL"),
    ("app:\n  command: x\n  migrate: {args: [a]}\n",
     "cfg.yml:4: app.migrate: missing required key 'command'"),
    ("app: {command: x}\nstatic: [public]\n", "cfg.yml:3: static: expected a mapping, got a list"),
    ("app: {command: x}\napplications:\n  tenants: []\n",
     "cfg.yml:3: applications: the reference format's applications section is not read in a "
     "version: 2 file; expected app and tenants"),
    ("app: {command: x}\nauth:\n  realm: Members\n",
     "cfg.yml:3: auth.htpasswd: missing the htpasswd file (auth is on when this section"),
    ("app: {command: x}\ntenants: everyone\n",
     "cfg.yml:3: tenants: expected a mapping of tenant paths"),
])
def test_errors_name_line_key_and_what_was_expected(tmp_path: Path, text: str,
                                                    message: str) -> None:
    assert error_of(tmp_path, text).startswith(message)


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yml"
    path.write_text("version: 3\n")
    with pytest.raises(ConfigError, match=r"cfg\.yml:1: version: expected 2"):
        load_config(path, {}, cwd=tmp_path)


def test_warnings_name_the_concise_key(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app:
          command: x
          idle: soon
          colour: blue
        tenants:
          /a/: {var: {}, startup_timeout: later}
        """)
    warnings = [w.removeprefix(f"{tmp_path}/") for w in config.warnings]
    assert "cfg.yml:5: app.colour: unknown key (ignored)" in warnings
    assert any(w.startswith("cfg.yml:4: app.idle: ") for w in warnings), warnings
    assert any(w.startswith('cfg.yml:7: tenants["/a/"].startup_timeout: ')
               for w in warnings), warnings


# --- presets ---------------------------------------------------------------------------------
def test_every_preset_loads_with_its_defaults(tmp_path: Path) -> None:
    for name, preset in PRESETS.items():
        app = f"app: {{preset: {name}}}\n" if preset.command else "app: {command: run}\n"
        config = load(tmp_path, app + "tenants: {/shop/t/: {}}\n")
        tenant = config.tenants[0]
        assert tenant.health_path == ("/shop/t" if preset.health_under_prefix else "") \
            + preset.health, name
        assert tenant.ready_on_5xx is preset.ready_on_5xx, name
        assert tenant.strip_prefix is (preset.prefix == "strip"), name
        assert (("SCRIPT_NAME", "/shop/t") in tenant.env) is (preset.prefix == "script_name")
        assert tenant.cookie_prefix == (b"/shop/t" if preset.scope_cookies else b""), name
        assert config.cable.enabled is preset.cable, name
        hooks = [(h.command, *h.args) for h in config.tenant_hooks.before_start]
        assert hooks == ([preset.migrate] if preset.migrate else []), name


@pytest.mark.parametrize(("preset", "argv", "extra"), [
    ("rails", ("bin/rails", "server", "--binding", "127.0.0.1", "--port", "{port}"),
     {"RAILS_ENV": "production", "RAILS_APP_SCOPE": "/shop/t"}),
    ("django", ("gunicorn", "config.wsgi", "--bind", "127.0.0.1:{port}", "--workers", "2",
                "--no-control-socket"), {"SCRIPT_NAME": "/shop/t"}),
    ("fastapi", ("uvicorn", "main:app", "--host", "127.0.0.1", "--port", "{port}",
                 "--no-access-log"), {"UVICORN_ROOT_PATH": "/shop/t"}),
    ("node", ("node", "server.js"), {"NODE_ENV": "production"}),
])
def test_preset_command_and_env(tmp_path: Path, preset: str, argv: tuple[str, ...],
                                extra: dict[str, str]) -> None:
    config = load(tmp_path, f"app: {{preset: {preset}}}\ntenants: {{/shop/t/: {{}}}}\n")
    assert config.tenants[0].argv == argv
    assert dict(config.tenants[0].env) == extra
    timeout = {"rails": 30.0, "django": 15.0, "fastapi": 10.0, "node": 10.0}[preset]
    assert config.tenants[0].startup_timeout == timeout
    if PRESETS[preset].assets:
        assert config.static is None or config.static.cache_overrides[0].prefix == \
            PRESETS[preset].assets


def test_preset_values_are_overridable(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    config = load(tmp_path, """\
        app:
          preset: django
          module: notesite.wsgi
          health: /up
          health_under_prefix: false
          ready_on_5xx: true
          prefix: strip
          cookies: shared
          startup_timeout: 2s
          migrate: false
          env: {SCRIPT_NAME: /mine}
        static: {assets: /django-assets/}
        cable: {enabled: true}
        tenants: {/d/: {}}
        """)
    tenant = config.tenants[0]
    assert tenant.argv[1] == "notesite.wsgi"
    assert (tenant.health_path, tenant.ready_on_5xx, tenant.strip_prefix) == ("/up", True, True)
    assert (tenant.cookie_prefix, tenant.startup_timeout) == (b"", 2.0)
    assert dict(tenant.env) == {"SCRIPT_NAME": "/mine"}
    assert config.tenant_hooks.before_start == ()
    assert config.cable.enabled
    assert config.static is not None
    assert [o.prefix for o in config.static.cache_overrides] == ["/django-assets/"]


def test_migrate_command_runs_before_the_files_own_hooks(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app: {command: run, migrate: "./migrate --all"}
        hooks: {tenant: {before_start: [{command: ./seed}]}}
        tenants: {/a/: {}}
        """)
    hooks = config.tenant_hooks.before_start
    assert [(h.command, h.args, h.timeout) for h in hooks] == [
        ("./migrate", ("--all",), 120.0), ("./seed", (), None)]


def test_generic_is_the_reference_format_defaults(tmp_path: Path) -> None:
    concise = load(tmp_path, "app: {command: run}\ntenants: {/a/: {}}\n")
    reference = tmp_path / "ref.yml"
    reference.write_text("applications:\n  framework: {command: run}\n"
                         "  tenants: [{path: /a/}]\n")
    assert concise.tenants == load_config(reference, {}, cwd=tmp_path).tenants


# --- placement and routes --------------------------------------------------------------------
def test_placement_globs_place_tenants_first_match_wins(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app: {command: run}
        tenants:
          pattern: /{owner}/{list}/
          list: [sam/a, sally/a, sally/b]
        placement:
          /sally/b/: {machine: m123}
          /sally/**: {region: ams}
        """)
    assert [(t.path, t.region, t.machine) for t in config.tenants] == [
        ("/sam/a/", "", ""), ("/sally/a/", "ams", ""), ("/sally/b/", "", "m123")]
    replays = [r for r in config.rules if r.kind == "replay"]
    assert {r.replay.placement: (r.replay.region, r.replay.machine)
            for r in replays if r.replay} == {"/sally/a/": ("ams", ""),
                                             "/sally/b/": ("", "m123")}


def test_prefer_instance_places_tenants_and_replays(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app: {command: run}
        tenants: {pattern: "/{user}/", list: [sam, sally]}
        placement:
          /sally/: {prefer_instance: m148}
        replay:
          /eu/**: {prefer_instance: m9, region: ams}
        """)
    assert [(t.path, t.prefer_instance) for t in config.tenants] == [
        ("/sam/", ""), ("/sally/", "m148")]
    replays = {r.replay.placement or "rule": r.replay.prefer_instance
               for r in config.rules if r.kind == "replay" and r.replay}
    assert replays == {"/sally/": "m148", "rule": "m9"}


def test_prefer_instance_survives_conversion(tmp_path: Path) -> None:
    from navigator.config.convert import convert_file

    reference = tmp_path / "ref.yml"
    reference.write_text(textwrap.dedent("""\
        applications:
          framework: {command: run}
          tenants:
            - {path: /sam/, prefer_instance: m1}
            - {path: /sally/, machine: m2}
        """))
    concise = tmp_path / "concise.yml"
    concise.write_text(convert_file(str(reference), "concise"))
    assert "prefer_instance: m1" in concise.read_text()
    assert load_config(concise, {}, cwd=tmp_path).tenants == \
        load_config(reference, {}, cwd=tmp_path).tenants


def test_routes_from_globs(tmp_path: Path) -> None:
    config = load(tmp_path, """\
        app: {command: run}
        redirects: {/old/**: /new/$1}
        rewrites: {"^/l/(\\\\w+)/": /$1/}
        proxies:
          /api/: http://127.0.0.1:9000
          /ws/*/: {target: "http://127.0.0.1:9001", websocket: true}
        replay:
          /eu/**: {region: ams, methods: [GET]}
        auth: {htpasswd: users, public: ["*.css"], open: [/, /docs/**]}
        """)
    kinds = [(r.kind, r.pattern.pattern, r.written) for r in config.rules]
    assert kinds[0][0] == "redirect"
    assert kinds[0][2] == ("^/old/(.*)$", "/new/$1")
    assert re.match(kinds[0][1], "/old/a/b")
    assert kinds[1][0] == "rewrite"
    assert kinds[2][0] == "replay"
    api, ws = config.reverse_proxies
    assert (api.prefix, api.pattern, api.target.port) == ("/api/", None, 9000)
    assert ws.pattern is not None
    assert ws.pattern.search("/ws/x/")
    assert ws.websocket
    assert config.auth.enabled
    assert [p.pattern.pattern for p in config.auth.auth_patterns] == ["^/$", "^/docs/(.*)$"]
    assert config.auth.public_paths == ("*.css",)


@pytest.mark.parametrize(("static", "line", "key"), [
    ("static: nowhere\n", 3, "static"),
    ("static:\n  try: [.html]\n  dir: nowhere\n", 5, "static.dir"),
])
def test_static_warning_names_the_concise_key(tmp_path: Path, static: str, line: int,
                                              key: str) -> None:
    config = load(tmp_path, "app: {command: x}\n" + static)
    assert [" ".join(w.removeprefix(f"{tmp_path}/").split(" ")[:2]) for w in config.warnings] == [
        f"cfg.yml:{line}: {key}:"]


def documented_concise_blocks() -> list[tuple[str, str]]:
    repo = Path(__file__).resolve().parents[2]
    found = []
    for doc in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]:
        blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.DOTALL)
        found += [(f"{doc.name}#{i}", block) for i, block in enumerate(blocks)
                  if block.startswith("version: 2")]
    return found


@pytest.mark.parametrize(("where", "block"), documented_concise_blocks(),
                         ids=[w for w, _ in documented_concise_blocks()])
def test_documented_concise_snippets_load(tmp_path: Path, where: str, block: str) -> None:
    (tmp_path / "public").mkdir()
    path = tmp_path / "cfg.yml"
    path.write_text(block)
    config = load_config(path, {}, cwd=tmp_path)
    assert not [w for w in config.warnings if "unknown key" in w], (where, config.warnings)


@pytest.mark.parametrize(("text", "where"), [
    ("version: 2\napp: {ready_on_5xx: maybe}\n", "app.ready_on_5xx"),
    ("version: 2\nauth: {open: /}\n", "auth.open"),
    ("version: 2\nserver: {listen: [3000]}\n", "server.listen"),
])
def test_editor_schema_checks_concise_files(text: str, where: str) -> None:
    import jsonschema
    import yaml

    from navigator.config.docs import editor_schema

    schema = editor_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [".".join(map(str, e.absolute_path)) for e in validator.iter_errors(
        yaml.safe_load(text))]
    assert where in problems
    assert not list(validator.iter_errors(yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config.example.yml").read_text())))
