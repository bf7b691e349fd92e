"""Seq survives restarts (and crashes) through the state file; fault knobs do what they say."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from devices.state import BLOCK, SeqState
from tests.devices.helpers import messages, simulate


def _last_seqs(lines: list[bytes]) -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = defaultdict(list)
    for topic, p in messages(lines):
        out[(p["device_id"], topic.split("/")[1])].append(p["seq"])
    return out


def test_seq_continues_across_runs_and_trips_are_new(tmp_path: Path) -> None:
    lines, fleet = simulate("smoke", state=SeqState.open(tmp_path))
    fleet.hub.state.save(clean=True)
    first = _last_seqs(lines)
    state = SeqState.open(tmp_path)
    lines, fleet = simulate("smoke", state=state)
    fleet.hub.state.save(clean=True)
    second = _last_seqs(lines)
    for key, seqs in second.items():
        assert seqs[0] == max(first[key]) + 1, key
    trips = {p["trip_id"] for t, p in messages(lines) if t.startswith("city/vehicle/")}
    assert all(t.endswith("-t2") for t in trips)


def test_after_a_crash_seq_jumps_past_the_reservation(tmp_path: Path) -> None:
    state = SeqState.open(tmp_path)
    state.prepare([("dev", "gps")])
    for _ in range(10):
        state.next("dev", "gps")
    # No clean save: the process "died" here.
    again = SeqState.open(tmp_path)
    assert again.next("dev", "gps") > 10
    assert again.next("dev", "gps") <= 10 + BLOCK + 2


def test_drops_leave_real_gaps_and_duplicates_repeat_the_same_message() -> None:
    faults = {"faults": {"drop_prob": 0.2, "duplicate_prob": 0.2}}
    lines, fleet = simulate("smoke", faults)
    seqs = _last_seqs(lines)
    assert fleet.hub.stats.network_dropped > 0 and fleet.hub.stats.duplicates > 0
    ids = Counter(p["id"] for _, p in messages(lines))
    assert sum(n - 1 for n in ids.values()) == fleet.hub.stats.duplicates
    gaps = sum(max(s) - len(set(s)) for s in seqs.values())
    assert gaps == fleet.hub.stats.network_dropped


def test_late_delivery_reorders_and_reboots_silence_devices() -> None:
    lines, fleet = simulate(
        "smoke",
        {"faults": {"late_prob": 0.2, "late_delay_s": [20, 40], "reboot_per_hour": 60}},
    )
    seqs = _last_seqs(lines)
    assert any(s != sorted(s) for s in seqs.values())
    assert fleet.hub.stats.reboots > 0
    for s in seqs.values():
        assert sorted(s) == list(range(1, len(s) + 1))  # reboots create no seq gaps


def test_clock_skew_shifts_timestamps() -> None:
    plain = messages(simulate("smoke")[0])
    skewed = messages(simulate("smoke", {"faults": {"clock_skew_s": 30}})[0])
    assert [p["seq"] for _, p in plain] != [] and any(
        a[1]["timestamp"] != b[1]["timestamp"] for a, b in zip(plain, skewed, strict=False)
    )
