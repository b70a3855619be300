"""A grouped bar chart of CPU per request (or per MiB, per round trip) as a ratio to nginx.

Room: benchmarks, reporting. A pure function from summary rows to SVG text, written by hand
(no plotting dependency): one group per scenario, one bar per proxy that has a ratio in that
scenario, nginx's own bar at 1.00x and a dashed line there. Scenarios without an nginx row
(the route-lookup pair) have no ratio and are left out. Lower is better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from benchmarks.report import BASELINE, RESULTS, Report, Summary, summarize

COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f")
BAR = 22
GAP = 26  # between scenario groups
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 58, 74
PLOT_HEIGHT = 240


def _ticks(top: float) -> list[float]:
    """Round steps from 0 up to at least `top` (1, 2 or 5 times a power of ten)."""
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step) + 1)]


def bars(rows: Sequence[Summary]) -> list[tuple[str, str, float]]:
    """(scenario, proxy, CPU ratio to nginx) in the rows' order; only rows that have one."""
    return [(row.scenario, row.proxy, row.cpu_vs_nginx) for row in rows
            if row.cpu_vs_nginx is not None]


def svg(rows: Sequence[Summary], title: str) -> str:
    """The chart for `rows` (report.summarize's output) as a standalone SVG document."""
    data = bars(rows)
    scenarios = list(dict.fromkeys(scenario for scenario, _, _ in data))
    proxies = list(dict.fromkeys(proxy for _, proxy, _ in data))
    if BASELINE in proxies:  # the yardstick first in every group
        proxies.remove(BASELINE)
        proxies.insert(0, BASELINE)
    colour = {proxy: COLOURS[i % len(COLOURS)] for i, proxy in enumerate(proxies)}
    ratios = {(scenario, proxy): ratio for scenario, proxy, ratio in data}
    group = max(1, len(proxies)) * BAR + GAP
    # wide enough for the title too (14 px bold sans-serif: under 8.5 px per character)
    width = max(LEFT + max(1, len(scenarios)) * group + RIGHT,
                LEFT + int(len(title) * 8.5) + RIGHT)
    height = TOP + PLOT_HEIGHT + BOTTOM
    ticks = _ticks(max([1.0, *ratios.values()]) * 1.08)
    scale = PLOT_HEIGHT / ticks[-1]
    base_y = TOP + PLOT_HEIGHT

    def y(value: float) -> float:
        return base_y - value * scale

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, proxy in enumerate(proxies):  # legend
        at = LEFT + i * 150
        out.append(f'<rect x="{at}" y="30" width="12" height="12" fill="{colour[proxy]}"/>')
        out.append(f'<text x="{at + 16}" y="40">{escape(proxy)}</text>')
    for tick in ticks:
        out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(tick):.1f}" '
                   f'y2="{y(tick):.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
                   f"{tick:g}x</text>")
    out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(1.0):.1f}" y2="{y(1.0):.1f}" '
               f'stroke="#333333" stroke-dasharray="4 3"/>')
    out.append(f'<text transform="translate(14 {TOP + PLOT_HEIGHT / 2}) rotate(-90)" '
               f'text-anchor="middle">CPU per request ÷ nginx (lower is better)</text>')
    for g, scenario in enumerate(scenarios):
        left = LEFT + g * group + GAP / 2
        for p, proxy in enumerate(proxies):
            ratio = ratios.get((scenario, proxy))
            if ratio is None:
                continue
            x = left + p * BAR
            top = y(ratio)
            label = f"{scenario}, {proxy}: {ratio:.2f}x nginx's CPU per request"
            out.append(
                f'<rect class="bar" data-scenario={quoteattr(scenario)} '
                f'data-proxy={quoteattr(proxy)} x="{x + 1:.1f}" y="{top:.1f}" '
                f'width="{BAR - 2}" height="{base_y - top:.1f}" fill="{colour[proxy]}">'
                f"<title>{escape(label)}</title></rect>")
            out.append(f'<text x="{x + BAR / 2:.1f}" y="{top - 3:.1f}" text-anchor="middle" '
                       f'font-size="9">{ratio:.2f}</text>')
        centre = left + len(proxies) * BAR / 2
        out.append(f'<text transform="translate({centre:.1f} {base_y + 14}) rotate(-30)" '
                   f'text-anchor="end">{escape(scenario)}</text>')
    out.append(f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{base_y}" y2="{base_y}" '
               f'stroke="#333333"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def save(rep: Report, stamp: str, folder: Path = RESULTS) -> list[Path]:
    """`<stamp>.svg` and `latest.svg` beside the markdown table (report.save)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = svg(summarize(rep.samples), f"navigator benchmark {rep.meta.get('started', '')}: "
                                       "CPU per request relative to nginx")
    written = []
    for name in (f"{stamp}.svg", "latest.svg"):
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
