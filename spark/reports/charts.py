"""Plotly charts for the HTML report: figures built in Python, drawn by plotly.js in the page.

Each chart is a ``<div class="chart" data-figure="...">`` holding the figure as JSON in an
attribute (Jinja2 escapes it there), and the page's one script draws every such div. So the data
never sits inside a ``<script>`` element, where a ``</script>`` in a device id would end it.

Plotly renders trace names, hover texts, axis titles and category labels as pseudo-HTML (it
understands ``<b>``, ``<br>``, ``<a href>``); every string that comes from data goes through
``text()`` (html.escape) before it reaches a figure, so it is shown, never interpreted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup

from spark.reports import page

SPEED_SCALE = "RdYlGn"
"""Red standing still, green at free flow: the live map's colours."""
SPEED_MAX_KMH = 120.0
TIME_AXIS = {"type": "date", "tickformat": "%H:%M\n%d %b", "title": {"text": "time (UTC)"}}
"""Time of day on two lines (the day under it), never epoch numbers."""
MARGIN = {"l": 10, "r": 10, "t": 50, "b": 10}


def text(value: object) -> str:
    """A value from data, safe for Plotly's pseudo-HTML text rendering."""
    return escape(str(value))


def layout(title: str, height: int = 380, **extra: Any) -> dict[str, Any]:
    """A figure's layout: plain template, axes that make room for their labels."""
    base: dict[str, Any] = {
        "title": {"text": text(title)},
        "height": height,
        "margin": MARGIN,
        "template": "plotly_white",
        "hoverlabel": {"namelength": -1},  # full device names on hover, never cut
        "xaxis": {"automargin": True},
        "yaxis": {"automargin": True},
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


def render(fig: go.Figure) -> Markup:
    """The figure as a div the page's script draws (``data-figure``, escaped by Jinja2)."""
    return page.chart_div(pio.to_json(fig, validate=True, pretty=False))


def empty(title: str) -> Markup:
    return page.note(f"{title}: no data")


def bars(
    items: Sequence[tuple[str, float]],
    title: str,
    xlabel: str,
    ylabel: str,
    hover: Sequence[str] | None = None,
) -> Markup:
    """A bar per labelled value; long labels wrap in the axis margin and show whole on hover."""
    if not items:
        return empty(title)
    labels = [text(label) for label, _ in items]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=[value for _, value in items],
            hovertext=[text(h) for h in hover] if hover else labels,
            hoverinfo="text+y",
            marker_color="#1f77b4",
        ),
        layout=layout(
            title,
            xaxis={"title": {"text": text(xlabel)}, "tickangle": -30, "type": "category"},
            yaxis={"title": {"text": text(ylabel)}, "tickformat": ",~r"},
        ),
    )
    return render(fig)


def lines(
    series: Mapping[str, Sequence[tuple[float | datetime, float]]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> Markup:
    """One line per named series; x may be numbers or datetimes (then a time-of-day axis)."""
    points = [p for s in series.values() for p in s]
    if not points:
        return empty(title)
    timed = isinstance(points[0][0], datetime)
    fig = go.Figure(layout=layout(title, yaxis={"title": {"text": text(ylabel)}}))
    for name, pts in series.items():
        ordered = sorted(pts, key=lambda p: p[0])
        fig.add_trace(
            go.Scatter(
                x=[x for x, _ in ordered],
                y=[y for _, y in ordered],
                name=text(name),
                mode="lines+markers",
                marker_size=4,
            )
        )
    fig.update_xaxes(TIME_AXIS if timed else {"title": {"text": text(xlabel)}})
    return render(fig)


def equal_aspect(latitudes: Sequence[float]) -> dict[str, Any]:
    """y-axis settings so a kilometre north is as long as a kilometre east (lon/lat plot)."""
    mid = (min(latitudes) + max(latitudes)) / 2 if latitudes else 52.0
    return {
        "scaleanchor": "x",
        "scaleratio": 1 / max(math.cos(math.radians(mid)), 0.1),
        "title": {"text": "latitude"},
    }


def speed_colours(title: str = "km/h") -> dict[str, Any]:
    return {
        "colorscale": SPEED_SCALE,
        "cmin": 0,
        "cmax": SPEED_MAX_KMH,
        "colorbar": {"title": {"text": title}, "thickness": 12},
    }
