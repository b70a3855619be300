"""Each framework example's navigator.yml passes `navigator check` (no framework needed), so
a config-schema change that breaks an example shows up even where Rails, Django or FastAPI are
not installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("example", ["rails", "django", "fastapi"])
def test_framework_example_config_checks(example: str) -> None:
    app = REPO / "examples" / example
    done = subprocess.run([sys.executable, "-m", "navigator", "check", "navigator.yml"],
                          cwd=app, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warnings 0" in done.stdout, done.stdout + done.stderr
    for tenant in ("alpha", "beta", "gamma"):
        assert f"/{example}/{tenant}/" in done.stdout
