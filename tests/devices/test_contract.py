"""Every message the fleet publishes satisfies the contract, and its values make sense."""

from __future__ import annotations

from collections import defaultdict

import pytest

from contract import STREAMS, decode, encode, validate
from tests.devices.helpers import messages, simulate


@pytest.fixture(scope="module")
def stream() -> list[tuple[str, dict]]:
    lines, _ = simulate(
        "london-birmingham",
        {"duration_s": 3 * 3600, "incidents": {"rate_per_hour": 6}, "faults": {}},
    )
    return messages(lines) + messages(simulate("smoke")[0])


def test_every_message_validates(stream: list[tuple[str, dict]]) -> None:
    kinds = set()
    for topic, payload in stream:
        s, device_id, _ = decode(topic, encode(payload))
        assert validate(STREAMS[s.name], payload) == []
        assert device_id == payload["device_id"]
        kinds.add(s.name)
    assert kinds == {"vehicle", "gps", "traffic", "weather", "emergency"}


def test_weather_condition_agrees_with_precipitation(stream: list[tuple[str, dict]]) -> None:
    wet = {"drizzle", "rain", "heavy_rain", "snow"}
    reports = [p for t, p in stream if t.startswith("city/weather/")]
    assert any(p["weather_condition"] in wet for p in reports)
    assert any(p["weather_condition"] not in wet for p in reports)
    for p in reports:
        assert (p["precipitation_mm"] > 0) == (p["weather_condition"] in wet), p


def test_incidents_go_reported_active_resolved(stream: list[tuple[str, dict]]) -> None:
    lives: dict[str, list[str]] = defaultdict(list)
    for topic, p in stream:
        if topic.startswith("city/emergency/"):
            lives[p["incident_id"]].append(p["status"])
    assert lives
    for statuses in lives.values():
        assert statuses == ["reported", "active", "resolved"][: len(statuses)]
    assert any(len(s) == 3 for s in lives.values())


def test_cameras_count_passing_vehicles(stream: list[tuple[str, dict]]) -> None:
    counts = [p for t, p in stream if t.startswith("city/traffic/london")]
    assert sum(p["vehicle_count"] for p in counts) > 0
    for p in counts:
        assert (p["avg_speed_kmh"] is None) == (p["vehicle_count"] == 0)
        assert p["snapshot_url"].startswith("s3://")


def test_cameras_count_each_fleet_vehicle_once() -> None:
    """Without background traffic, what a camera counts is the fleet alone."""
    lines, _ = simulate(
        "london-birmingham",
        {"duration_s": 3 * 3600, "incidents": {"enabled": False}, "traffic": {"background": False}},
    )
    per_camera: dict[str, int] = defaultdict(int)
    for t, p in messages(lines):
        if t.startswith("city/traffic/"):
            per_camera[p["camera_id"]] += p["vehicle_count"]
    # Each of the 5 vehicles passes every camera once (all trips end within 3 h).
    assert len(per_camera) == 8
    assert set(per_camera.values()) == {5}
