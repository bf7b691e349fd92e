"""Vehicles on the real London-Birmingham route: distance, limits, heading, arrival."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from tests.devices.helpers import messages, simulate

ROUTE = Path(__file__).resolve().parents[2] / "scenarios" / "routes" / "london-birmingham.geojson"
ONE_CAR = {
    "vehicles": [
        {
            "route": "m1-m6",
            "count": 1,
            "intervals_s": {"vehicle": 1, "gps": 1},
            "gps_dropout_prob": 0,
            "mix": [{"make": "Ford", "model": "Fiesta", "fuel_type": "petrol"}],
        }
    ],
    "cameras": [],
    "weather": None,
    "incidents": {"enabled": False},
}


def _geojson_line() -> list[tuple[float, float]]:
    geo = json.loads(ROUTE.read_text())
    return [tuple(c) for c in geo["features"][0]["geometry"]["coordinates"]]


def _haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


@pytest.fixture(scope="module")
def trip() -> list[dict]:
    lines, _ = simulate("london-birmingham", ONE_CAR)
    return [p for t, p in messages(lines) if t.startswith("city/vehicle/")]


def test_drives_the_whole_route_and_stops_at_the_destination(trip: list[dict]) -> None:
    coords = _geojson_line()
    length_km = sum(_haversine(a, b) for a, b in itertools.pairwise(coords)) / 1000
    last = trip[-1]
    assert last["distance_km"] == pytest.approx(length_km, abs=0.01)
    assert last["speed_kmh"] == 0
    assert (last["longitude"], last["latitude"]) == pytest.approx(coords[-1], abs=1e-5)
    assert trip[0]["speed_kmh"] == 0
    distances = [p["distance_km"] for p in trip]
    assert distances == sorted(distances)
    assert last["odometer_km"] - trip[0]["odometer_km"] == pytest.approx(length_km, abs=0.05)
    assert last["fuel_level_pct"] < trip[0]["fuel_level_pct"]


def test_speed_follows_the_road(trip: list[dict]) -> None:
    speeds = [p["speed_kmh"] for p in trip]
    assert max(speeds) <= 112 * 1.1 + 0.1
    motorway = [p["speed_kmh"] for p in trip if 20 < p["distance_km"] < 150]
    assert sum(motorway) / len(motorway) > 90
    urban = [p["speed_kmh"] for p in trip if p["distance_km"] < 3]
    assert max(urban) <= 64 * 1.1 + 0.1
    # Smooth: no change above the braking/acceleration limits (3 m/s² → 10.8 km/h per second).
    steps = [abs(b - a) for a, b in itertools.pairwise(speeds)]
    assert max(steps) <= 10.9
    hours = len(trip) / 3600
    assert 80 < trip[-1]["distance_km"] / hours < 112


def test_heading_comes_from_the_geometry(trip: list[dict]) -> None:
    coords = _geojson_line()

    def bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
        (lon1, lat1), (lon2, lat2) = (tuple(map(math.radians, a)), tuple(map(math.radians, b)))
        x = math.sin(lon2 - lon1) * math.cos(lat2)
        y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(
            lon2 - lon1
        )
        return math.degrees(math.atan2(x, y)) % 360

    cum = [0.0]
    for a, b in itertools.pairwise(coords):
        cum.append(cum[-1] + _haversine(a, b))
    checked = 0
    for p in trip[10:-10:97]:
        d = p["distance_km"] * 1000
        i = max(j for j in range(len(cum) - 1) if cum[j] <= d)
        want = bearing(coords[i], coords[i + 1])
        diff = abs((p["heading_deg"] - want + 180) % 360 - 180)
        assert diff < 1.0, (p["distance_km"], p["heading_deg"], want)
        checked += 1
    assert checked > 20


def test_rain_slows_traffic() -> None:
    storm = {
        **ONE_CAR,
        "duration_s": 1800,
        "weather": {"front": {"speed_kmh": 0, "start_km": 0, "width_km": 500, "peak_mm_h": 8}},
    }
    dry = {**ONE_CAR, "duration_s": 1800}

    def mean_speed(overrides: dict) -> float:
        lines, _ = simulate("london-birmingham", overrides)
        trip = [p for t, p in messages(lines) if t.startswith("city/vehicle/")]
        return trip[-1]["distance_km"] / (len(trip) / 3600)

    # Heavy rain (8 mm/h) lowers free-flow speed by 6 % (4-7 % measured, Agarwal et al. 2005).
    assert mean_speed(storm) < 0.97 * mean_speed(dry)


def test_gps_has_metre_scale_noise_and_drops_out() -> None:
    car = {**ONE_CAR, "duration_s": 3600}
    car["vehicles"] = [{**ONE_CAR["vehicles"][0], "gps_dropout_prob": 0.02}]
    lines, _ = simulate("london-birmingham", car)
    msgs = messages(lines)
    vehicle = {p["timestamp"]: p for t, p in msgs if t.startswith("city/vehicle/")}
    gps = [p for t, p in msgs if t.startswith("city/gps/")]
    assert len(gps) < len(vehicle)  # dropouts: fixes with no message
    errors = []
    for g in gps:
        v = vehicle[g["timestamp"]]
        errors.append(_haversine((g["longitude"], g["latitude"]), (v["longitude"], v["latitude"])))
        assert g["hdop"] > 0 and 4 <= g["satellites"] <= 20
    assert 0.5 < sum(errors) / len(errors) < 15
