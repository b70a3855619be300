"""The generated configuration reference and the exported JSON Schema stay true to the Structs
and to what the loader accepts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from navigator.config.docs import REFERENCE, main, missing_texts, reference_markdown
from navigator.config.loader import ConfigError
from navigator.config.yamlfile import decode, parse_yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIGS = sorted([REPO / "config.example.yml", *(REPO / "examples").rglob("*.yml")])
DOCUMENTED = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """The schema exactly as `navigator schema` prints it."""
    done = subprocess.run([sys.executable, "-m", "navigator", "schema"], capture_output=True,
                          text=True, timeout=30, cwd=REPO, check=True)
    schema = json.loads(done.stdout)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def as_yaml_11(text: str) -> Any:
    """What an editor using YAML 1.1 sees: `off` is false, `10` an int, `1:30` is 90."""
    return yaml.safe_load(text)


def as_navigator(text: str) -> Any:
    """What navigator's loader sees: every plain scalar is text."""
    return parse_yaml(text).data


def errors(validator: jsonschema.protocols.Validator, data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(data)]


def test_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text() == reference_markdown(), \
        "docs/configuration.md is stale: run `python -m navigator.config.docs`"


def test_every_key_has_a_text_and_every_text_a_key() -> None:
    assert missing_texts() == []


def test_check_mode_reports_a_stale_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text("old\n")
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main([str(stale)]) == 0
    assert main(["--check", str(stale)]) == 0
    assert stale.read_text() == reference_markdown()


def test_reference_names_every_section_and_its_defaults() -> None:
    text = reference_markdown()
    assert "## `applications.pools`" in text
    assert "| `start_port` | integer | `4000` |" in text
    assert "| `status` | integer | **required** |" in text
    assert "Used at `routes.redirects[]`, `routes.rewrites[]`." in text
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    assert set(re.findall(r"\]\(#([^)]+)\)", text)) <= anchors  # every link lands


def test_navigator_docs_prints_the_reference() -> None:
    done = subprocess.run([sys.executable, "-m", "navigator", "docs"], capture_output=True,
                          text=True, timeout=30, cwd=REPO, check=True)
    assert done.stdout == reference_markdown()


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
@pytest.mark.parametrize("reader", [as_yaml_11, as_navigator])
def test_schema_accepts_the_shipped_configs(validator: jsonschema.protocols.Validator,
                                            path: Path, reader: Any) -> None:
    assert errors(validator, reader(path.read_text())) == []


def yaml_blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCUMENTED:
        blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.DOTALL)
        found += [(f"{doc.name}#{i}", block) for i, block in enumerate(blocks)]
    return found


@pytest.mark.parametrize(("where", "block"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_schema_accepts_the_documented_snippets(validator: jsonschema.protocols.Validator,
                                                where: str, block: str) -> None:
    assert errors(validator, as_yaml_11(block)) == []
    assert errors(validator, as_navigator(block)) == []


YAML_11_WORDS = """
server:
  listen: 3000
  idle: {action: suspend, timeout: 10}
auth:
  enabled: yes
  realm: off
applications:
  pools: {start_port: "4100", timeout: 1:30}
  track_websockets: Off
  tenants:
    - path: /a/
      track_websockets:
      var: {n: 1, flag: on}
"""


@pytest.mark.parametrize("reader", [as_yaml_11, as_navigator])
def test_yaml_11_words_and_empty_values_validate(validator: jsonschema.protocols.Validator,
                                                 reader: Any) -> None:
    assert errors(validator, reader(YAML_11_WORDS)) == []
    decode(as_navigator(YAML_11_WORDS))  # and the loader agrees


WRONG = {
    "tenants not a list": ("applications:\n  tenants: everyone\n",
                           "applications.tenants"),
    "listen is a list": ("server:\n  listen: [3000]\n", "server.listen"),
    "port is a word": ("applications:\n  pools:\n    start_port: four thousand\n",
                       "applications.pools.start_port"),
    "boolean is a word": ("auth:\n  enabled: maybe\n", "auth.enabled"),
    "managed process without name": ("managed_processes:\n  - args: [x]\n",
                                     "managed_processes.0"),
    "health response without status": ("server:\n  health_check:\n    response:\n"
                                       "      body: hi\n", "server.health_check.response"),
    "section is a string": ("routes: everything\n", "routes"),
}


@pytest.mark.parametrize(("text", "where"), WRONG.values(), ids=WRONG.keys())
def test_schema_rejects_what_the_loader_rejects(validator: jsonschema.protocols.Validator,
                                                text: str, where: str) -> None:
    for reader in (as_yaml_11, as_navigator):
        problems = errors(validator, reader(text))
        assert problems, f"{reader.__name__} accepted it"
        assert any(problem.startswith(f"{where}:") for problem in problems), problems
    with pytest.raises(ConfigError):
        decode(as_navigator(text))
