"""The HTML report escapes every value from data: what a device sends never runs in a browser."""

from __future__ import annotations

from html.parser import HTMLParser

from spark.reports import audit, journeys, svg

EVIL = '<script>alert("x")</script>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def tags(html: str) -> list[str]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


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
    html = journeys.html([row], {EVIL: [(-1.0, 52.0), (-1.1, 52.1)]})
    assert "script" not in tags(html) and "img" not in tags(html)
    assert html.count("&lt;script&gt;") >= 4  # three cells and the route map's title


def test_audit_table_escapes_every_cell() -> None:
    row = dict.fromkeys(
        ["expected", "received", "missing", "duplicates_removed", "late_rows", "quarantined"], 0
    )
    row.update(stream=EVIL, device_id=EVIL)
    html = audit.html([row])
    assert "script" not in tags(html)
    assert html.count("&lt;script&gt;") == 2


def test_charts_escape_labels() -> None:
    html = svg.bar_chart([(EVIL, 1.0)], EVIL, EVIL, EVIL) + svg.line_chart(
        {EVIL: [(0.0, 1.0), (1.0, 2.0)]}, EVIL, EVIL, EVIL
    )
    assert "script" not in tags(html)
