"""The HTML report escapes every value from data: what a device sends never runs in a browser."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

from spark.reports import audit, charts, journeys
from tests.spark.helpers import T0

EVIL = '<script>alert("x")</script>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.figures: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.figures += [value or "" for name, value in attrs if name == "data-figure"]


def tags(html: str) -> list[str]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def shown(html: str) -> str:
    """The markup and each chart's figure JSON as the page's script reads it (unescaped from
    its attribute): Plotly draws those strings as HTML-ish text, so they must hold no tag."""
    parser = _Tags()
    parser.feed(html)
    return str(html) + "".join(parser.figures)


def test_journey_table_escapes_trip_route_and_device() -> None:
    row = {
        "device_id": EVIL,
        "trip_id": EVIL,
        "route_id": EVIL + "<img src=x onerror=alert(1)>",
        "distance_km": 1.0,
        "duration_min": 2.0,
        "avg_speed_kmh": 30.0,
        "max_speed_kmh": 50.0,
        "fuel_used_pct": 0.5,
        "stops": 0,
    }
    row.update(start=T0, end=T0 + timedelta(minutes=2))
    html = shown(journeys.html([row]))
    assert "script" not in tags(html) and "img" not in tags(html)
    assert html.count("&lt;script&gt;") >= 4  # three cells and the trip timeline's labels


def test_audit_table_escapes_every_cell() -> None:
    row = dict.fromkeys(
        ["expected", "received", "missing", "duplicates_removed", "late_rows", "quarantined"], 0
    )
    row.update(stream=EVIL, device_id=EVIL)
    html = audit.html([row])
    assert "script" not in tags(html)
    assert html.count("&lt;script&gt;") == 2


def test_charts_escape_labels() -> None:
    html = shown(
        charts.bars([(EVIL, 1.0)], EVIL, EVIL, EVIL)
        + charts.lines({EVIL: [(0.0, 1.0), (1.0, 2.0)]}, EVIL, EVIL, EVIL)
    )
    assert "script" not in tags(html)
