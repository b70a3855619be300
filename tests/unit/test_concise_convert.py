"""`navigator convert`, `check --format` and `init`: a file converted either way loads into the
same runtime Config as the original (the shipped examples and a generated 100-tenant file),
and the starter config fits the app it finds."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
import yaml

from navigator.__main__ import main
from navigator.config import runtime as rt
from navigator.config.convert import convert_file
from navigator.config.loader import ConfigError, load_config
from navigator.config.starter import STARTER_NAME, Detected, detect, write_starter

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [REPO / "config.example.yml", REPO / "examples" / "demo-reference.yml",
           *sorted((REPO / "examples").glob("*/*.yml"))]
ENVIRON = {"FLY_APP_NAME": "demo", "FLY_REGION": "ord", "FLY_MACHINE_ID": "m1"}


def runtime(path: Path, cwd: Path) -> rt.Config:
    """The runtime Config without what names the file (its path, and the key paths in
    warnings, which differ between formats by design)."""
    config = load_config(path, ENVIRON, cwd=cwd)
    return dataclasses.replace(config, source=Path("/"),
                               warnings=tuple(w.split(": ")[-1] for w in config.warnings))


def converted(path: Path, to: str, tmp_path: Path) -> Path:
    out = tmp_path / f"{path.stem}-{to}-{len(list(tmp_path.iterdir()))}.yml"
    out.write_text(convert_file(str(path), to))
    return out


def is_concise(path: Path) -> bool:
    data = yaml.safe_load(path.read_text())
    return isinstance(data, dict) and "version" in data


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
@pytest.mark.parametrize("to", ["concise", "reference"])
def test_shipped_configs_round_trip(path: Path, to: str, tmp_path: Path) -> None:
    cwd = path.parent if path.parent != REPO / "examples" else REPO
    out = converted(path, to, tmp_path)
    assert is_concise(out) is (to == "concise")
    assert runtime(out, cwd) == runtime(path, cwd)
    back = converted(out, "reference" if to == "concise" else "concise", tmp_path)
    assert runtime(back, cwd) == runtime(path, cwd)


def test_demo_and_its_reference_copy_are_one_config() -> None:
    concise = runtime(REPO / "config.example.yml", REPO)
    reference = runtime(REPO / "examples" / "demo-reference.yml", REPO)
    assert concise == reference
    assert [t.path for t in concise.tenants] == ["/sam/list1/", "/sam/list2/", "/sally/list1/"]


@pytest.mark.parametrize(("example", "preset"), [
    ("rails", "rails"), ("django", "django"), ("fastapi", "fastapi")])
def test_conversion_chooses_the_framework_preset(example: str, preset: str,
                                                 tmp_path: Path) -> None:
    out = converted(REPO / "examples" / example / "navigator.yml", "concise", tmp_path)
    data = yaml.safe_load(out.read_text())
    assert data["app"]["preset"] == preset
    assert data["tenants"] == {"pattern": f"/{example}/{{tenant}}/",
                               "list": ["alpha", "beta", "gamma"]}


def hundred_tenants(seed: int) -> str:
    """A reference-format file with 100 tenants and most of what the format can say."""
    rng = random.Random(seed)
    tenants = []
    for index in range(100):
        tenant: dict[str, object] = {"path": f"/c{index % 7}/t{index}/",
                                     "var": {"org": f"c{index % 7}", "id": f"t{index}"}}
        if index % 9 == 0:
            tenant["env"] = {"EXTRA": str(index)}
        if index % 11 == 0:
            tenant["region"] = rng.choice(["ams", "ord", "syd"])
        if index % 13 == 0:
            tenant["machine"] = f"m{index:04x}"
        if index % 17 == 0:
            tenant.update(name=f"named-{index}", memory_limit="256M", startup_timeout="20s")
        if index % 19 == 0:
            tenant["hooks"] = {"start": [{"command": "notify", "args": [str(index)]}]}
        tenants.append(tenant)
    data = {
        "server": {"listen": "127.0.0.1:3999", "static": {"public_dir": "public",
                                                          "try_files": [".html"]},
                   "health_check": {"path": "/up", "response": {"status": 200, "body": "OK"}},
                   "limits": {"max_body_bytes": "10M"}, "idle": {"action": "stop"}},
        "auth": {"enabled": True, "htpasswd": "users", "public_paths": ["/login", "*.css"],
                 "auth_patterns": [{"pattern": "^/c1/", "action": "off"}]},
        "routes": {"redirects": [{"from": "^/old/(.*)$", "to": "/c0/t0/$1"},
                                 {"from": "^/(a|b)/?$", "to": "/$1/"}],
                   "rewrites": [{"from": "/legacy/", "to": "/c2/"}],
                   "reverse_proxies": [{"prefix": "/api/", "target": "http://127.0.0.1:9000"},
                                       {"path": "^/ws/(\\w+)", "target": "http://127.0.0.1:9001",
                                        "websocket": True, "name": "ws"}],
                   "fly": {"replay": [{"path": "^/eu/", "region": "ams", "status": 307}]}},
        "applications": {
            "pools": {"timeout": "3m", "start_port": 4100, "max_size": 20},
            "env": {"DB": "/data/${org}/${id}.db", "ORG": "${org}"},
            "health_check": "/healthz", "startup_timeout": "8s", "scope_cookies": True,
            "framework": {"command": "node", "args": ["server.js", "--port", "{{port}}"],
                          "port_env_var": "HTTP_PORT"},
            "tenants": tenants},
        "hooks": {"tenant": {"before_start": [{"command": "./migrate", "timeout": "1m"}]},
                  "server": {"ready": [{"command": "./warm"}]}},
        "managed_processes": [{"name": "redis", "command": "redis-server"}],
        "logging": {"format": "json"},
    }
    return json.dumps(data)  # JSON is YAML


@pytest.mark.parametrize("seed", [1, 2])
def test_hundred_tenants_round_trip(seed: int, tmp_path: Path) -> None:
    original = tmp_path / "hundred.yml"
    original.write_text(hundred_tenants(seed))
    expected = runtime(original, tmp_path)
    assert len(expected.tenants) == 100
    concise = converted(original, "concise", tmp_path)
    data = yaml.safe_load(concise.read_text())
    assert data["version"] == 2
    assert len(data["tenants"]) == 100
    assert len(data["placement"]) > 0
    assert runtime(concise, tmp_path) == expected
    reference = converted(concise, "reference", tmp_path)
    assert runtime(reference, tmp_path) == expected


def test_what_has_no_concise_form_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "maps.yml"
    path.write_text("applications:\n  runtime:\n    rails: ruby3\n  tenants: [{path: /a/}]\n")
    with pytest.raises(ConfigError, match=r"maps\.yml:2: applications\.runtime: the concise"):
        convert_file(str(path), "concise")


# --- the command line ------------------------------------------------------------------------
def test_convert_and_check_format_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert main(["convert", "config.example.yml"]) == 0
    reference = capsys.readouterr().out
    assert "applications:" in reference
    assert "version" not in yaml.safe_load(reference)
    assert main(["check", "--format", "concise", "examples/demo-reference.yml"]) == 0
    concise = yaml.safe_load(capsys.readouterr().out)
    assert concise["version"] == 2
    assert main(["convert", "--to", "concise", "config.example.yml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["tenants"]["/sam/list1/"] == {
        "owner": "sam", "list": "list1"}
    assert main(["check", "--to", "concise", "config.example.yml"]) == 2
    assert "--to goes with convert" in capsys.readouterr().err
    assert main(["convert", "--format", "concise", "config.example.yml"]) == 2
    assert "--format goes with check" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 2\napp: {preset: cobol}\n")
    assert main(["convert", str(bad)]) == 1
    assert "bad.yml:2: app.preset: expected one of" in capsys.readouterr().err


@pytest.mark.parametrize(("files", "expected"), [
    ({"bin/rails": "#!/usr/bin/env ruby"}, Detected("rails")),
    ({"Gemfile": "gem 'rails', '~> 7.1'"}, Detected("rails")),
    ({"manage.py": 'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notesite.settings")'},
     Detected("django", "notesite.wsgi")),
    ({"manage.py": "print()"}, Detected("django")),
    ({"main.py": "from fastapi import FastAPI\napi = FastAPI()\n"},
     Detected("fastapi", "main:api")),
    ({"requirements.txt": "fastapi\nuvicorn\n"}, Detected("fastapi")),
    ({"package.json": '{"main": "index.js"}'}, Detected("node", "index.js")),
    ({"package.json": "not json"}, Detected("node")),
    ({"README": "hello"}, Detected("generic")),
])
def test_init_detects_the_framework(files: dict[str, str], expected: Detected) -> None:
    found = detect(files.get)
    assert (found.preset, found.module) == (expected.preset, expected.module)


@pytest.mark.parametrize("marker", ["bin/rails", "manage.py", "main.py", "package.json", ""])
def test_init_writes_a_starter_that_loads_and_never_overwrites(
        marker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if marker:
        (tmp_path / marker).parent.mkdir(exist_ok=True)
        (tmp_path / marker).write_text("app = FastAPI()\n" if marker == "main.py" else "{}")
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    written = tmp_path / STARTER_NAME
    config = load_config(written, {}, cwd=tmp_path)
    assert [t.path for t in config.tenants] == ["/alpha/", "/beta/"]
    assert dict(config.tenants[0].env)["TENANT"] == "alpha"
    before = written.read_text()
    assert main(["init"]) == 1
    assert "exists; not overwritten" in capsys.readouterr().err
    assert written.read_text() == before
    with pytest.raises(FileExistsError):
        write_starter(tmp_path)


EDGES = """\
applications:
  framework: {command: run}
  env: {ROOT: "${prefix}", NAME: "${var}"}
  tenants:
    - {path: /with/, var: {prefix: /with, var: x}}
    - {path: /own/, var: {prefix: /elsewhere}}
    - {path: without, region: ams}
    - {path: "/odd*{x}/", machine: m1}
auth: {enabled: true, realm: Members}
"""


def test_edges_round_trip(tmp_path: Path) -> None:
    """`${prefix}` with and without the variable, a variable named `var`, a path without
    slashes, glob characters in a placed tenant's path, auth on without a file (off)."""
    original = tmp_path / "edges.yml"
    original.write_text(EDGES)
    expected = runtime(original, tmp_path)
    assert [dict(t.env)["ROOT"] for t in expected.tenants] == [
        "/with", "/elsewhere", "${prefix}", "${prefix}"]
    concise = converted(original, "concise", tmp_path)
    assert runtime(concise, tmp_path) == expected
    assert runtime(converted(concise, "reference", tmp_path), tmp_path) == expected
