"""The demo's bookkeeping: where a run's clock starts, and when the lake has caught up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cityconf.errors import UserError
from contract.manifest import Manifest
from drills.clock import SimulatedClock, fleet_lead_s
from drills.demo import read_manifest
from drills.watch import covers


def write_manifest(path: Path, sim_seconds: float) -> Path:
    path.write_text(
        json.dumps(
            {
                "devices": {
                    "d-veh-1": {"vehicle": {"published": 3, "first_seq": 4, "last_seq": 6}},
                    "d-veh-2": {"gps": {"published": 2}, "status": {"published": 1}},
                },
                "stats": {"sim_seconds": sim_seconds},
            }
        )
    )
    return path


def test_first_run_starts_now_and_the_next_after_it_ended(tmp_path: Path) -> None:
    clock = SimulatedClock(tmp_path / "clock.json", "demo")
    first = datetime.fromisoformat(clock.next_start())
    assert abs(first - datetime.now(UTC)) < timedelta(seconds=5)
    clock.ended(Manifest.read(write_manifest(tmp_path / "m.json", sim_seconds=7200)))

    again = SimulatedClock(tmp_path / "clock.json", "demo")
    second = datetime.fromisoformat(again.next_start())
    # Hours ahead of the wall clock, as the accelerated first run was: never behind it.
    assert second >= first + timedelta(seconds=7200)
    other = SimulatedClock(tmp_path / "clock.json", "another-scenario")
    assert datetime.fromisoformat(other.next_start()) < second


def test_manifest_totals_count_data_streams_only(tmp_path: Path) -> None:
    totals = read_manifest(write_manifest(tmp_path / "m.json", 1.0)).totals()
    assert totals["vehicle"] == 3 and totals["gps"] == 2 and "status" not in totals
    assert covers({"vehicle": 3, "gps": 5}, totals)
    assert not covers({"vehicle": 2, "gps": 5}, totals)


def test_a_broken_manifest_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"devices": {"d": {"gps": {"published": "many"}}}}')
    with pytest.raises(UserError) as err:
        read_manifest(path)
    assert str(path) in str(err.value) and "devices.d.gps" in str(err.value)


def test_the_streaming_job_allows_the_fleets_clock_its_lead(tmp_path: Path) -> None:
    clock = SimulatedClock(tmp_path / "clock.json", "demo")
    clock.ended(Manifest.from_counters({}, {"sim_seconds": 7200}))  # a first run of 2 h
    again = SimulatedClock(tmp_path / "clock.json", "demo")
    again.next_start()  # starts where that ended, 2 h ahead of now
    # Its latest event: 2 h ahead at the start, plus the whole run at 240 times the wall clock.
    assert fleet_lead_s(again, 240.0) >= 7200 + 240 * 3600
    assert fleet_lead_s(SimulatedClock(tmp_path / "other.json", "x"), 1.0) < 3600 + 600
