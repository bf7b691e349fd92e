"""The HTML report built by Spark from a small lake, opened in headless Chromium.

The lake holds one 10 km route on which an accident at km 9 backs a queue up the road at
15 km/h, a rain shower over a station at km 5, three cars driving through it and four cameras
watching it; one camera and the incident carry hostile ids. The report is built the way
``python -m spark.report all`` builds it, on a local Spark with Delta (no server); one test reads
the gold heat map for the jam moving upstream, the other (an integration test: Chromium) checks
in the browser that every chart was drawn (one SVG each), no JavaScript error was logged and
nothing from the data ran. The screenshot is kept under artifacts/.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from contract import EMERGENCY, GPS, TRAFFIC, VEHICLE, WEATHER, Stream, message_id
from live.browser import WatchedPage
from spark import lake, report
from spark.lake import Lake
from spark.reader import LakeReader
from spark.reports import shot
from spark.schema import silver_schema
from tests.browser import artifacts_dir
from tests.spark.helpers import T0

pytestmark = pytest.mark.slow

ROUTE = "r1"
START = T0 - timedelta(hours=1)  # 07:00 UTC
INCIDENT_KM, QUEUE_KMH = 9.0, 15.0
OPENED, CLEARED = 10.0, 50.0  # minutes after START: the accident, the queue gone
CAMERAS_KM = (2.0, 4.0, 6.0, 8.0)
HOSTILE_CAMERA = "cam-<img src=x onerror=window.pwned=1>"
HOSTILE_INCIDENT = "<script>window.pwned=1</script>"


def position(km: float) -> tuple[float, float]:
    """The route runs due north from (52.0, -1.5): about 111 m per 0.001° of latitude."""
    return 52.0 + km / 111.2, -1.5


def speed(km: float, minute: float) -> float:
    """Free flow at 100 km/h, 15 km/h inside the queue, whose tail moves upstream at 15 km/h."""
    onset = OPENED + (INCIDENT_KM - km) / QUEUE_KMH * 60
    return 15.0 if onset <= minute < CLEARED and km <= INCIDENT_KM else 100.0


def envelope(stream: Stream, device: str, seq: int, minute: float, km: float) -> dict:
    lat, lon = position(km)
    return {
        "id": message_id("test", 1, device, stream.name, seq),
        "device_id": device,
        "seq": seq,
        "timestamp": START + timedelta(minutes=minute),
        "scenario": "test",
        "latitude": lat,
        "longitude": lon,
    }


def drives() -> tuple[list[dict], list[dict]]:
    """Three cars leaving 8 minutes apart, one reading each 30 s: vehicle and GPS rows."""
    vehicles, fixes = [], []
    for i in range(3):
        device, km, minute, seq = f"car-{i}", 0.0, 8.0 * i, 0
        while km < 10.0:
            seq += 1
            v = speed(km, minute)
            base = envelope(VEHICLE, device, seq, minute, km)
            vehicles.append(
                base
                | {"speed_kmh": v, "route_id": ROUTE, "trip_id": f"{device}-t1", "distance_km": km}
                | {"vehicle_type": "car", "fuel_level_pct": 80.0 - seq * 0.1}
            )
            fixes.append(envelope(GPS, device, seq, minute, km) | {"speed_kmh": v})
            km += v / 120.0  # 30 s at v km/h
            minute += 0.5
    return vehicles, fixes


def cameras() -> list[dict]:
    rows = []
    for km in CAMERAS_KM:
        device = HOSTILE_CAMERA if km == CAMERAS_KM[-1] else f"cam-km{km:g}"
        for minute in range(60):
            v = speed(km, minute)
            rows.append(
                envelope(TRAFFIC, device, minute + 1, minute, km)
                | {"camera_id": device, "route_id": ROUTE, "distance_km": km, "interval_s": 60.0}
                | {"vehicle_count": 30 if v > 50 else 12, "avg_speed_kmh": v}
                | {"congestion_level": "free" if v > 50 else "heavy"}
            )
    return rows


def weather() -> list[dict]:
    rows = []
    for minute in range(0, 60, 5):
        wet = 20 <= minute < 45
        rows.append(
            envelope(WEATHER, "station-km5", minute // 5 + 1, minute, 5.0)
            | {"longitude": -1.503, "temperature_c": 9.0, "humidity_pct": 80.0}
            | {"weather_condition": "rain" if wet else "cloudy"}
            | {"precipitation_mm": 4.0 if wet else 0.0}
        )
    return rows


def incident() -> list[dict]:
    return [
        envelope(EMERGENCY, "incidents", seq, minute, INCIDENT_KM)
        | {"incident_id": HOSTILE_INCIDENT, "type": "accident", "status": status}
        | {"severity": 4, "route_id": ROUTE, "radius_km": 1.0, "description": "two lanes shut"}
        for seq, (minute, status) in enumerate(((OPENED, "active"), (CLEARED, "resolved")), 1)
    ]


def write_silver(spark, root: Path, stream: Stream, messages: list[dict]) -> None:
    """Silver rows of ``messages``; fields the test leaves out take a neutral value."""
    from pyspark.sql import types as T

    schema = silver_schema(stream)
    neutral = {T.StringType(): "", T.DoubleType(): 0.0, T.LongType(): 0, T.IntegerType(): 0}
    neutral[T.TimestampType()] = START
    rows = []
    for m in messages:
        values = m | {"event_date": m["timestamp"].date(), "kafka_timestamp": m["timestamp"]}
        rows.append(
            tuple(
                values.get(f.name, None if f.nullable else neutral[f.dataType])
                for f in schema.fields
            )
        )
    uri = Lake(str(root)).uri(lake.silver(stream))
    spark.createDataFrame(rows, schema).write.format("delta").save(uri)


@pytest.fixture(scope="module")
def built(
    local_delta_spark, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, list[dict]], Path]:
    spark, root = local_delta_spark, tmp_path_factory.mktemp("lake")
    vehicles, fixes = drives()
    for stream, messages in (
        (VEHICLE, vehicles),
        (GPS, fixes),
        (TRAFFIC, cameras()),
        (WEATHER, weather()),
        (EMERGENCY, incident()),
    ):
        write_silver(spark, root, stream, messages)
    reader = LakeReader(Lake(str(root)))
    # Kept with the screenshots (artifacts/report/), so a failure can be opened and read.
    return report.run(spark, reader, list(report.NAMES), None, artifacts_dir() / "report")


def first_slow(cells: list[dict], km: float) -> datetime:
    return min(c["time_bucket"] for c in cells if c["km"] == km and c["avg_speed_kmh"] < 40)


def test_gold_heat_map_shows_the_queue_moving_upstream(built) -> None:
    results, _ = built
    cells = [c for c in results["speed_heatmap"] if c["route_id"] == ROUTE]
    onsets = [first_slow(cells, km) for km in sorted(CAMERAS_KM, reverse=True)]
    assert onsets == sorted(onsets) and onsets[0] < onsets[-1], onsets  # later further upstream
    minutes = (onsets[-1] - onsets[0]).total_seconds() / 60
    kmh = (CAMERAS_KM[-1] - CAMERAS_KM[0]) / (minutes / 60)
    assert 10 <= kmh <= 25, kmh  # the 15 km/h wave, within the 5-minute buckets
    (placed,) = [p for p in results["places"] if p["kind"] == "incident"]
    assert placed["route_id"] == ROUTE and abs(placed["distance_km"] - INCIDENT_KM) <= 0.5
    assert {round(w["distance_km"]) for w in results["rain_front"]} == {5}


@pytest.mark.integration
def test_every_chart_renders_in_chromium_and_data_stays_text(
    built, browser_page: WatchedPage
) -> None:
    _, html = built
    page = browser_page.page
    drawn = shot.load(page, html)
    charts = page.locator("div.chart")
    assert drawn == charts.count() == 7  # map, heat map, trips, weather, incidents, cameras, km
    for i in range(drawn):
        assert charts.nth(i).locator("svg.main-svg").count() >= 1, f"chart {i} has no SVG"
    assert not browser_page.errors, browser_page.errors
    assert page.evaluate("() => window.pwned") is None  # the hostile ids did not run
    assert page.locator("img[src=x]").count() == 0
    camera_axis = page.locator("#congestion .ytick text").all_text_contents()
    assert HOSTILE_CAMERA in camera_axis  # shown whole, as text
    browser_page.page.set_viewport_size({"width": 1280, "height": 1400})
