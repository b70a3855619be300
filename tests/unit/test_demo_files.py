"""The bundled demo's static files and deployment files keep what issue 22 asked of them.

The landing page works on any host (no hard-coded `localhost:3000`); it and the todo pages
share one palette that is readable (WCAG AA contrast) in light and in dark mode; on Fly.io
the demo's data lands on the volume that fly.toml mounts, locally in /tmp/navigator-demo.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from navigator.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]
LANDING = REPO / "public" / "index.html"
STYLESHEET = REPO / "public" / "style.css"
TODO_APP = REPO / "examples" / "todo" / "app.py"
PROPERTY = re.compile(r"--([a-z]+):\s*(#[0-9a-fA-F]{6})")


def todo_style() -> str:
    spec = importlib.util.spec_from_file_location("todo_demo_style", TODO_APP)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.STYLE)


def palettes(css: str) -> tuple[dict[str, str], dict[str, str]]:
    """(light, dark) custom properties: the first `:root` block, and the one inside
    `@media (prefers-color-scheme: dark)`."""
    light_text, dark_marker, rest = css.partition("prefers-color-scheme")
    assert dark_marker, "no dark colour scheme"
    light = dict(PROPERTY.findall(light_text))
    dark = dict(PROPERTY.findall(rest.split("}", 1)[0] + "}"))
    return light, dark


def luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_landing_page_names_no_host() -> None:
    page = LANDING.read_text()
    assert "localhost" not in page
    assert not re.search(r"""href=["']https?:""", page)


@pytest.mark.parametrize("source", ["landing", "todo"])
def test_text_and_links_are_readable_in_both_schemes(source: str) -> None:
    css = STYLESHEET.read_text() if source == "landing" else todo_style()
    for scheme in palettes(css):
        for name in ("fg", "muted", "accent"):
            ratio = contrast(scheme[name], scheme["bg"])
            assert ratio >= 4.5, f"{source}: --{name} {scheme[name]} on {scheme['bg']}: {ratio:.2f}"


def test_landing_and_todo_pages_share_one_palette() -> None:
    assert palettes(STYLESHEET.read_text()) == palettes(todo_style())


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
