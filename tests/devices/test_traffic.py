"""Traffic that behaves like traffic, checked as an analyst would: from the published camera and
incident messages alone (counts, speeds, timestamps, distance along the route), never from the
model's internals. The scenario is the real three-lane M1/M6 carriageway of london-birmingham."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import pytest

from devices.loader import load
from tests.devices.helpers import messages, simulate

QUIET = {"vehicles": [], "weather": None, "incidents": {"enabled": False}}
CAR = {
    "route": "m1-m6",
    "count": 1,
    "depart": {"first_s": 6300},
    "intervals_s": {"vehicle": 10, "gps": None},
    "mix": [{"make": "Ford", "model": "Fiesta"}],
}
ACCIDENT_KM = 60.0
UPSTREAM_KM = [ACCIDENT_KM - 0.6 - k for k in range(15)]  # 59.4, 58.4, ... 45.4


def _t(stamp: str) -> float:
    """Seconds since midnight of the message's day."""
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6


def _cameras(stream: list[tuple[str, dict]]) -> dict[float, list[dict]]:
    """Camera reports by the camera's distance along the route, in time order."""
    out: dict[float, list[dict]] = defaultdict(list)
    for topic, p in stream:
        if topic.startswith("city/traffic/"):
            out[p["distance_km"]].append(p)
    return out


@pytest.fixture(scope="module")
def one_day() -> dict[float, list[dict]]:
    lines, _ = simulate(
        "london-birmingham",
        {
            **QUIET,
            "start": "2026-11-23T00:00:00Z",
            "duration_s": 86_400,
            "cameras": [{"route": "m1-m6", "every_km": 40, "interval_s": 60, "snapshots": "none"}],
        },
    )
    return _cameras(messages(lines))


@pytest.fixture(scope="module")
def accident() -> list[tuple[str, dict]]:
    """08:00 on a Monday, the morning peak: a collision closes two of the three lanes at km 60
    for 45 minutes; cameras every kilometre upstream and two downstream; one of our cars
    leaves London at 07:45 and drives into the queue."""
    at = [_point(km) for km in [*UPSTREAM_KM, ACCIDENT_KM + 1.4, ACCIDENT_KM + 3.4]]
    lines, _ = simulate(
        "london-birmingham",
        {
            **QUIET,
            "start": "2026-11-23T06:00:00Z",
            "duration_s": 5 * 3600,
            "vehicles": [CAR],
            "cameras": [{"route": "m1-m6", "at": at, "interval_s": 60, "snapshots": "none"}],
            "incidents": {
                "rate_per_hour": 0,
                "planned": [
                    {
                        "route": "m1-m6",
                        "at_km": ACCIDENT_KM,
                        "type": "accident",
                        "start_s": 2 * 3600,
                        "duration_s": 2700,
                        "lanes_closed": 2,
                    }
                ],
            },
        },
    )
    return messages(lines)


def test_morning_peak_carries_thousands_an_hour_and_the_night_a_fraction(
    one_day: dict[float, list[dict]],
) -> None:
    assert len(one_day) == 4
    for km, reports in one_day.items():
        hourly = defaultdict(int)
        for p in reports:
            hourly[int(_t(p["timestamp"]) - 1) // 3600] += p["vehicle_count"]
        peak = max(hourly[h] for h in range(6, 11))
        assert 3000 <= peak <= 6500, (km, dict(hourly))
        assert hourly[3] < peak / 5, (km, dict(hourly))
        evening = max(hourly[h] for h in range(15, 20))
        assert evening > 1.2 * hourly[12] > 5 * hourly[3]  # a second peak, a busy midday


def test_cameras_along_a_route_without_junctions_count_the_same_vehicles(
    one_day: dict[float, list[dict]],
) -> None:
    """Nothing lost, nothing made up: with one entry and no exits, every camera sees the same
    vehicles over a day, less those still between two cameras at midnight (a few hundred)."""
    totals = [sum(p["vehicle_count"] for p in one_day[km]) for km in sorted(one_day)]
    assert min(totals) > 60_000 * 0.95
    assert max(totals) - min(totals) < 0.01 * max(totals)
    assert totals == sorted(totals, reverse=True)  # downstream never more than upstream


def test_slip_roads_take_traffic_off_and_bring_it_on() -> None:
    """An off-slip at km 50 takes 30 % of the traffic, an on-slip at km 100 adds 20,000 a day:
    the daily counts of cameras either side show both, and nothing else is lost."""
    spots = [40, 60, 90, 110]
    lines, _ = simulate(
        "london-birmingham",
        {
            **QUIET,
            "start": "2026-11-23T00:00:00Z",
            "duration_s": 86_400,
            "routes": [
                {
                    "id": "m1-m6",
                    "file": "routes/london-birmingham.geojson",
                    "junctions": [{"at_km": 50, "leaving": 0.3}, {"at_km": 100, "joining": 20_000}],
                }
            ],
            "cameras": [
                {"route": "m1-m6", "at": [_point(km) for km in spots], "snapshots": "none"}
            ],
        },
    )
    day = {km: sum(p["vehicle_count"] for p in r) for km, r in _cameras(messages(lines)).items()}
    before, after_off, before_on, after_on = (day[k] for k in sorted(day))
    assert after_off == pytest.approx(0.7 * before, rel=0.01)
    assert before_on == pytest.approx(after_off, rel=0.01)
    assert after_on - before_on == pytest.approx(20_000, rel=0.02)


def test_our_own_fleet_jams_where_three_lanes_become_one() -> None:
    """No background traffic: 200 of our cars a second apart (3,600 an hour) meet a stretch of
    one lane (2,000 an hour), so they count toward density and queue before it."""
    lines, _ = simulate(
        "london-birmingham",
        {
            **QUIET,
            "traffic": {"background": False},
            "duration_s": 1500,
            "vehicles": [{**CAR, "count": 200, "depart": {"every_s": 1.0}}],
            "routes": [
                {
                    "id": "m1-m6",
                    "file": "routes/london-birmingham.geojson",
                    "zones": [{"from_km": 20, "to_km": 23, "lanes": 1}],
                }
            ],
            "cameras": [
                {"route": "m1-m6", "at": [_point(km) for km in (10, 19.5, 25)], "snapshots": "none"}
            ],
        },
    )
    cameras = _cameras(messages(lines))
    slowest = {km: min(p["avg_speed_kmh"] or 999 for p in r) for km, r in cameras.items()}
    assert {km: sum(p["vehicle_count"] for p in r) for km, r in cameras.items()} == {
        10.0: 200,
        19.5: 200,
        25.0: 200,
    }
    assert slowest[19.5] < 40  # queued before the lane drop
    assert slowest[10.0] > 85 and slowest[25.0] > 85  # free before the queue and after it


def _point(km: float) -> dict[str, float]:
    lat, lon, _ = load("london-birmingham").routes["m1-m6"].locate(km * 1000)
    return {"lat": lat, "lon": lon}


def test_heavy_rain_slows_free_flow_at_the_cameras() -> None:
    def night_speeds(weather: dict | None) -> list[float]:
        lines, _ = simulate(
            "london-birmingham",
            {
                **QUIET,
                "weather": weather,
                "start": "2026-11-23T02:00:00Z",
                "duration_s": 1800,
                "cameras": [{"route": "m1-m6", "every_km": 50, "snapshots": "none"}],
            },
        )
        return [p["avg_speed_kmh"] for t, p in messages(lines) if t.startswith("city/traffic/")]

    storm = {"front": {"speed_kmh": 0, "start_km": 0, "width_km": 500, "peak_mm_h": 8}}
    dry, wet = night_speeds(None), night_speeds(storm)
    assert min(dry) == max(dry) == 112.0  # free flow at the limit, night traffic
    # Heavy rain (over 6.35 mm/h): 4-7 % slower (Agarwal, Maze and Souleyrette, 2005).
    assert all(0.92 * 112 <= v <= 0.97 * 112 for v in wet)


def test_our_car_drives_at_the_speed_of_the_queue_it_meets(
    accident: list[tuple[str, dict]],
) -> None:
    car = [p for t, p in accident if t.startswith("city/vehicle/")]
    assert car
    resolved = _incident_times(accident)["resolved"]
    before = [p["speed_kmh"] for p in car if 20 < p["distance_km"] < 45]
    queued = [
        p["speed_kmh"]
        for p in car
        if 50 < p["distance_km"] < ACCIDENT_KM - 0.5 and _t(p["timestamp"]) < resolved
    ]
    assert sum(before) / len(before) > 100
    assert len(queued) > 30  # minutes in the queue
    assert sorted(queued)[len(queued) // 2] < 20
    after = [p["speed_kmh"] for p in car if p["distance_km"] > ACCIDENT_KM + 5]
    assert after and max(after) > 100  # and on its way again once past it


def _fd_points(stream: list[tuple[str, dict]]) -> list[tuple[float, float, float]]:
    """(density veh/km, flow veh/h, speed km/h) per camera interval: flow from the count, density
    as flow over speed."""
    points = []
    for reports in _cameras(stream).values():
        for p in reports:
            if p["vehicle_count"] and p["avg_speed_kmh"]:
                q = p["vehicle_count"] * 3600 / p["interval_s"]
                points.append((q / p["avg_speed_kmh"], q, p["avg_speed_kmh"]))
    return points


def test_camera_flow_and_density_lie_on_a_triangular_fundamental_diagram(
    accident: list[tuple[str, dict]],
) -> None:
    points = _fd_points(accident)
    free_speed = max(v for _, _, v in points)
    capacity = max(q for _, q, _ in points)
    critical = capacity / free_speed
    assert 5000 <= capacity <= 6600  # three lanes, about 2,000 veh/h each
    # Below the critical density: speed stays at free flow whatever the flow (but for the odd
    # minute in which a queue's tail passed the camera, half free and half queued).
    free = [(k, q, v) for k, q, v in points if k < 0.8 * critical]
    assert len(free) > 500
    near_free = [v for _, _, v in free if v >= 0.95 * free_speed]
    assert len(near_free) >= 0.99 * len(free)
    # Above it: speed falls as density rises, and flow falls on a straight line (the congested
    # branch) whose slope is the backward wave speed, 15-20 km/h by the literature.
    jam = sorted((k, q, v) for k, q, v in points if k > 2 * critical)
    assert len(jam) > 100
    thirds = [jam[: len(jam) // 3], jam[-(len(jam) // 3) :]]
    mean_v = [sum(v for _, _, v in part) / len(part) for part in thirds]
    assert mean_v[1] < mean_v[0]
    n = len(jam)
    mk = sum(k for k, _, _ in jam) / n
    mq = sum(q for _, q, _ in jam) / n
    slope = sum((k - mk) * (q - mq) for k, q, _ in jam) / sum((k - mk) ** 2 for k, _, _ in jam)
    assert -22 < slope < -12, slope


def _slowdowns(stream: list[tuple[str, dict]], below_kmh: float) -> dict[float, float]:
    """The first time (s) each camera reports a mean speed under ``below_kmh``."""
    first = {}
    for km, reports in _cameras(stream).items():
        for p in reports:
            if p["avg_speed_kmh"] is not None and p["avg_speed_kmh"] < below_kmh:
                first[km] = _t(p["timestamp"])
                break
    return first


def _incident_times(stream: list[tuple[str, dict]]) -> dict[str, float]:
    return {p["status"]: _t(p["timestamp"]) for t, p in stream if t.startswith("city/emergency/")}


def test_an_accident_at_the_peak_queues_upstream_and_the_tail_moves_back(
    accident: list[tuple[str, dict]],
) -> None:
    times = _incident_times(accident)
    reported = times["reported"]
    slow = _slowdowns(accident, 40.0)
    nearest = UPSTREAM_KM[0]
    assert slow[nearest] - reported <= 10 * 60  # within minutes
    downstream = [km for km in _cameras(accident) if km > ACCIDENT_KM]
    assert downstream and not any(km in slow for km in downstream)
    # The queue's tail: when each camera upstream first slows, against its distance.
    tail = sorted((slow[km], km) for km in UPSTREAM_KM if km in slow)
    assert len(tail) >= 8
    n = len(tail)
    mt = sum(t for t, _ in tail) / n
    md = sum(d for _, d in tail) / n
    kmh = sum((t - mt) * (d - md) for t, d in tail) / sum((t - mt) ** 2 for t, _ in tail) * 3600
    assert -25 <= kmh <= -10, kmh  # moving upstream, at 10-25 km/h
    assert [d for _, d in tail] == sorted((d for _, d in tail), reverse=True)


def test_speeds_recover_after_the_accident_is_cleared(accident: list[tuple[str, dict]]) -> None:
    resolved = _incident_times(accident)["resolved"]
    cameras = _cameras(accident)

    def recovered_at(km: float) -> float:
        """Time of the first report at near-free speed after the camera was last slow."""
        reports = cameras[km]
        last_slow = max(_t(p["timestamp"]) for p in reports if (p["avg_speed_kmh"] or 999) < 40)
        return min(
            _t(p["timestamp"])
            for p in reports
            if _t(p["timestamp"]) > last_slow and (p["avg_speed_kmh"] or 0) > 90
        )

    nearest = UPSTREAM_KM[0]
    assert resolved < recovered_at(nearest) <= resolved + 15 * 60
    end = max(_t(p["timestamp"]) for r in cameras.values() for p in r)
    for km, reports in cameras.items():
        assert reports[-1]["avg_speed_kmh"] > 90, km  # every camera free again by the end
        assert recovered_at(km) < end if km in UPSTREAM_KM else True
