"""Small inline SVG charts for the HTML report: lines by k, grouped bars, a histogram.

Pure string building, no plotting library; every label goes through ``html.escape``.
Charts are 560x260 user units and scale with the page (``viewBox``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

W, H = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 150, 16, 40
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _frame(body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
        f'aria-label="{_esc(title)}" class="chart"><title>{_esc(title)}</title>' + "".join(body) + "</svg>"
    )


def _y_axis(y_max: float, plot_h: float) -> list[str]:
    out = []
    for i in range(5):
        v = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.2g}</text>')
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names):
        y = TOP + 14 * i
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{W - RIGHT + 10}" y="{y}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{W - RIGHT + 24}" y="{y + 9}">{_esc(name)}</text>')
    return out


def _nice_max(values: Sequence[float]) -> float:
    top = max([v for v in values if v is not None and math.isfinite(v)] or [0.0])
    if top <= 1.0:
        return 1.0
    mag = 10 ** math.floor(math.log10(top))
    return math.ceil(top / mag) * mag


def line_chart(
    series: Mapping[str, Mapping[int | str, float]], title: str = "metric by k", x_label: str = "k"
) -> str:
    """One line per series over the x values (e.g. k = 1, 3, 5, 10); y from 0 to 1 for fractions."""
    xs = sorted({int(k) for s in series.values() for k in s})
    if not xs:
        return ""
    values = [float(v) for s in series.values() for v in s.values() if v is not None]
    y_max, plot_w, plot_h = _nice_max(values), W - LEFT - RIGHT, H - TOP - BOTTOM
    span = max(xs[-1] - xs[0], 1)

    def px(x: int) -> float:
        return LEFT + plot_w * (x - xs[0]) / span

    body = _y_axis(y_max, plot_h)
    body += [f'<text x="{px(x):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{x}</text>' for x in xs]
    body.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 6}" text-anchor="middle">{_esc(x_label)}</text>')
    for i, (name, points) in enumerate(series.items()):
        pts = sorted((int(k), float(v)) for k, v in points.items() if v is not None)
        coords = [(px(x), TOP + plot_h - plot_h * v / y_max) for x, v in pts]
        color = PALETTE[i % len(PALETTE)]
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            + '"/>'
        )
        body += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_esc(name)} @ {k}: '
            f"{v:.3f}</title></circle>"
            for (x, y), (k, v) in zip(coords, pts, strict=True)
        ]
    return _frame(body + _legend(list(series)), title)


def bar_chart(groups: Mapping[str, Mapping[str, float]], title: str = "by type") -> str:
    """Grouped bars: one group per key of ``groups`` (e.g. question type), one bar per metric."""
    metrics = list(dict.fromkeys(m for g in groups.values() for m in g))
    if not groups or not metrics:
        return ""
    values = [float(v) for g in groups.values() for v in g.values() if v is not None]
    y_max, plot_w, plot_h = _nice_max(values), W - LEFT - RIGHT, H - TOP - BOTTOM
    slot = plot_w / len(groups)
    bar = slot * 0.8 / len(metrics)
    body = _y_axis(y_max, plot_h)
    for gi, (group, vals) in enumerate(groups.items()):
        x0 = LEFT + gi * slot + slot * 0.1
        body.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{_esc(group)}</text>'
        )
        for mi, metric in enumerate(metrics):
            v = vals.get(metric)
            if v is None:
                continue
            h = plot_h * float(v) / y_max
            body.append(
                f'<rect x="{x0 + mi * bar:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar * 0.9:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[mi % len(PALETTE)]}"><title>{_esc(group)} / '
                f"{_esc(metric)}: {float(v):.3f}</title></rect>"
            )
    return _frame(body + _legend(metrics), title)


def histogram(values: Sequence[float], bins: int = 20, title: str = "latency (s)") -> str:
    """Histogram of ``values`` with ``bins`` equal-width bins from the minimum to the maximum."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    width = (hi - lo) / bins or 1.0
    counts = [0] * bins
    for v in vals:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    y_max = float(max(4, math.ceil(max(counts) / 4) * 4))  # four integer ticks
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    body = _y_axis(y_max, plot_h)
    bw = plot_w / bins
    for i, c in enumerate(counts):
        h = plot_h * c / y_max
        body.append(
            f'<rect x="{LEFT + i * bw:.1f}" y="{TOP + plot_h - h:.1f}" width="{bw * 0.95:.1f}" '
            f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{lo + i * width:.3g}-'
            f"{lo + (i + 1) * width:.3g}: {c}</title></rect>"
        )
    for x, v in ((LEFT, lo), (W - RIGHT, hi)):
        body.append(f'<text x="{x}" y="{H - BOTTOM + 16}" text-anchor="middle">{v:.3g}</text>')
    body.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{H - 6}" text-anchor="middle">{_esc(title)}</text>')
    return _frame(body, title)
