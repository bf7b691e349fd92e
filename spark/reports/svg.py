"""Tiny inline-SVG charts for the HTML report: no plotting dependency, one string per chart."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

W, H, PAD = 720, 300, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _frame(title: str, body: str, xlabel: str, ylabel: str, ticks: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="11">'
        f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>'
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#888"/>'
        f'<line x1="{PAD}" y1="24" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>'
        f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>'
        f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">'
        f"{escape(ylabel)}</text>{ticks}{body}</svg>"
    )


def _yticks(lo: float, hi: float, sy) -> str:
    out = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f'<text x="{PAD - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:,.4g}</text>')
    return "".join(out)


def table(header: Sequence[str], rows: Sequence[Sequence[object]], bad: Sequence[bool] = ()) -> str:
    """An HTML table; every cell is escaped, because cells carry what devices sent."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        ('<tr class="bad">' if i < len(bad) and bad[i] else "<tr>")
        + "".join(f"<td>{escape(str(cell))}</td>" for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]], title: str, xlabel: str, ylabel: str
) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<p>{escape(title)}: no data</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    y_lo = min(0.0, min(ys))
    sx = _scale(min(xs), max(xs), PAD, W - 10)
    sy = _scale(y_lo, max(ys), H - PAD, 28)
    body = []
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(pts))
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        body.append(
            f'<text x="{W - 12}" y="{34 + 13 * i}" text-anchor="end" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    ticks = _yticks(y_lo, max(ys), sy)
    ticks += f'<text x="{PAD}" y="{H - PAD + 14}">{min(xs):,.4g}</text>'
    ticks += f'<text x="{W - 10}" y="{H - PAD + 14}" text-anchor="end">{max(xs):,.4g}</text>'
    return _frame(title, "".join(body), xlabel, ylabel, ticks)


def bar_chart(bars: Sequence[tuple[str, float]], title: str, xlabel: str, ylabel: str) -> str:
    if not bars:
        return f"<p>{escape(title)}: no data</p>"
    top = max(v for _, v in bars) or 1.0
    sy = _scale(0, top, H - PAD, 28)
    width = (W - PAD - 10) / len(bars)
    body = []
    for i, (label, value) in enumerate(bars):
        x = PAD + i * width
        body.append(
            f'<rect x="{x + 2:.1f}" y="{sy(value):.1f}" width="{max(width - 4, 1):.1f}" '
            f'height="{H - PAD - sy(value):.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: '
            f"{value:,.4g}</title></rect>"
            f'<text x="{x + width / 2:.1f}" y="{H - PAD + 12}" text-anchor="middle">'
            f"{escape(label[:12])}</text>"
        )
    return _frame(title, "".join(body), xlabel, ylabel, _yticks(0, top, sy))


def route_map(
    lines: Mapping[str, Sequence[tuple[float, float]]],
    marks: Sequence[tuple[float, float, str]] = (),
    title: str = "Route",
) -> str:
    """Polylines in lon/lat (equirectangular, x scaled by cos(latitude)) with labelled marks."""
    pts = [p for line in lines.values() for p in line] + [(m[0], m[1]) for m in marks]
    if not pts:
        return f"<p>{escape(title)}: no positions</p>"
    lons, lats = [p[0] for p in pts], [p[1] for p in pts]
    k = math.cos(math.radians((min(lats) + max(lats)) / 2))
    span = max((max(lons) - min(lons)) * k, max(lats) - min(lats)) or 0.01
    size = 520
    sx = lambda lon: 20 + (lon - min(lons)) * k / span * size  # noqa: E731
    sy = lambda lat: 30 + (max(lats) - lat) / span * size  # noqa: E731
    body = []
    for i, (name, line) in enumerate(lines.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(lo):.1f},{sy(la):.1f}" for lo, la in line)
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    for lon, lat, label in marks:
        body.append(
            f'<circle cx="{sx(lon):.1f}" cy="{sy(lat):.1f}" r="4" fill="#d62728">'
            f"<title>{escape(label)}</title></circle>"
        )
    w, h = size + 40, size + 50
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">'
        f'<rect width="{w}" height="{h}" fill="#f6f8fa"/>'
        f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>'
        f"{''.join(body)}</svg>"
    )
