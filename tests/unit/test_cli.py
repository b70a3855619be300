"""The command line's word parsing: which command runs, with which config, or a usage error."""

from __future__ import annotations

import pytest

from navigator.__main__ import DEFAULT_CONFIG, Invocation, UsageError, parse_words


def exists(path: str) -> bool:
    return path in {"myconfig", "restart-notes"}


@pytest.mark.parametrize(("words", "config", "expected"), [
    ([], None, Invocation("serve", DEFAULT_CONFIG)),
    (["site.yml"], None, Invocation("serve", "site.yml")),
    (["config/navigator.yml"], None, Invocation("serve", "config/navigator.yml")),
    (["myconfig"], None, Invocation("serve", "myconfig")),  # an existing file, no extension
    ([], "a.yml", Invocation("serve", "a.yml")),
    (["serve", "a.yml"], None, Invocation("serve", "a.yml")),
    (["check", "a.yml"], None, Invocation("check", "a.yml")),
    (["check"], "a.yml", Invocation("check", "a.yml")),
    (["status"], None, Invocation("status", DEFAULT_CONFIG)),
    (["schema"], None, Invocation("schema", DEFAULT_CONFIG)),
    (["docs"], None, Invocation("docs", DEFAULT_CONFIG)),
    (["convert", "a.yml"], None, Invocation("convert", "a.yml")),
    (["convert"], "a.yml", Invocation("convert", "a.yml")),
    (["init"], None, Invocation("init", DEFAULT_CONFIG)),
    (["restart", "sam"], None, Invocation("restart", DEFAULT_CONFIG, "sam")),
    (["restart", "/sam/list1", "a.yml"], None, Invocation("restart", "a.yml", "/sam/list1")),
    (["restart", "sam"], "a.yml", Invocation("restart", "a.yml", "sam")),
])
def test_commands_and_config(words: list[str], config: str | None,
                             expected: Invocation) -> None:
    assert parse_words(words, config, exists) == expected


@pytest.mark.parametrize(("words", "config", "message"), [
    (["reboot", "x"], None, "unknown command 'reboot'"),
    (["restart"], None, "restart needs a tenant name or path"),
    (["restart"], "a.yml", "restart needs a tenant name or path"),
    (["restart", "x", "a.yml"], "b.yml", "unexpected argument 'a.yml'"),
    (["stop"], None, "unknown command 'stop'"),
    (["a.yml", "b.yml"], None, "unexpected argument 'b.yml'"),
    (["check", "a.yml", "b.yml"], None, "unexpected argument 'b.yml'"),
    (["check", "b.yml"], "a.yml", "unexpected argument 'b.yml'"),
    (["myconfig"], "a.yml", "unexpected argument 'myconfig'"),
    (["docs", "x"], None, "docs takes no arguments"),
    (["init", "here"], None, "init takes no arguments"),
])
def test_usage_errors(words: list[str], config: str | None, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_words(words, config, exists)
