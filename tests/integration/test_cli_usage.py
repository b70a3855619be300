"""A mistyped subcommand must not start a server (the real `python -m navigator`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("words", [["reboot", "x"], ["--config", "{config}", "stop"]])
def test_unknown_subcommand_exits_2_and_starts_nothing(tmp_path: Path, words: list[str]) -> None:
    """`navigator --config FILE stop` used to serve FILE (a second server next to the running
    one) and `navigator reboot x` took `reboot` for a config path (exit 1, as if the config
    were missing); both are usage errors now."""
    config = tmp_path / "config" / "navigator.yml"
    config.parent.mkdir()
    pid_file = tmp_path / "nav.pid"
    config.write_text(f'server:\n  listen: "127.0.0.1:0"\n  pid_file: {pid_file}\n')
    argv = [sys.executable, "-m", "navigator",
            *(word.replace("{config}", str(config)) for word in words)]
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"{' '.join(words)} started a server") from None
    assert process.returncode == 2, err
    assert err.startswith("usage: navigator")
    assert "unknown command" in err
    assert out == ""
    assert not pid_file.exists()


@pytest.mark.parametrize("command", ["docs", "schema", "check"])
def test_a_reader_that_leaves_early_gets_no_traceback(command: str) -> None:
    """`navigator docs | head -1`: the pipe is closed before the first byte is written; a
    quiet exit, no BrokenPipeError traceback on the terminal."""
    argv = [sys.executable, "-m", "navigator", command]
    if command == "check":
        argv.append(str(REPO / "config.example.yml"))
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write fails with EPIPE
    try:
        done = subprocess.run(argv, cwd=REPO, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=30, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr, done.stderr
    assert "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode != 0
