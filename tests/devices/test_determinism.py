"""Same scenario and seed, same messages: a golden file, diffed line by line."""

from __future__ import annotations

import difflib
import os
from collections import defaultdict
from pathlib import Path

from tests.devices.helpers import messages, simulate

GOLDEN = Path(__file__).parent / "golden" / "smoke.jsonl"


def test_smoke_matches_golden_file() -> None:
    lines, _ = simulate("smoke")
    got = b"".join(lines).decode()
    if os.environ.get("CITYFLEET_UPDATE_GOLDEN"):
        GOLDEN.write_text(got)
    want = GOLDEN.read_text()
    diff = "".join(
        difflib.unified_diff(want.splitlines(True), got.splitlines(True), "golden", "now", n=0)
    )
    assert not diff, f"message stream changed (CITYFLEET_UPDATE_GOLDEN=1 to accept):\n{diff[:3000]}"


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a, _ = simulate("smoke")
    b, _ = simulate("smoke")
    c, _ = simulate("smoke", {"seed": 8})
    assert a == b
    assert a != c


def test_seq_starts_at_one_and_is_contiguous_per_device_and_stream() -> None:
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    for topic, payload in messages(simulate("smoke")[0]):
        seqs[(payload["device_id"], topic.split("/")[1])].append(payload["seq"])
    assert seqs
    for key, got in seqs.items():
        assert got == list(range(1, len(got) + 1)), key


def test_adding_a_vehicle_does_not_reshuffle_the_others() -> None:
    """Each device draws from its own seeded generator; only traffic density links them."""
    base = simulate("smoke", {"incidents": {"enabled": False}})[0]
    loaded_more = simulate(
        "smoke",
        {
            "incidents": {"enabled": False},
            "vehicles": [
                {
                    "route": "m6-cov",
                    "count": 3,
                    "depart": {"first_s": 0, "every_s": 20},
                    "intervals_s": {"vehicle": 10, "gps": 5},
                    "gps_dropout_prob": 0.05,
                }
            ],
        },
    )[0]

    def before_third_departs(lines: list[bytes]) -> list:
        return [
            m
            for m in messages(lines)
            if m[1]["device_id"] == "smoke-veh-00001" and m[1]["timestamp"] < "2026-11-23T08:00:40"
        ]

    first, again = before_third_departs(base), before_third_departs(loaded_more)
    assert first and first == again


def test_message_ids_are_uuid5_of_scenario_seed_device_stream_and_seq() -> None:
    """Checked against ``uuid.uuid5`` itself: the cached ``MessageIds`` and every id a run sends."""
    import uuid

    from contract import MessageIds
    from contract.codec import ID_NAMESPACE

    def uuid5(scenario: str, seed: int, device: str, stream: str, seq: int) -> str:
        return str(uuid.uuid5(ID_NAMESPACE, f"{scenario}/{seed}/{device}/{stream}/{seq}"))

    for scenario, seed, device, stream in [
        ("smoke", 7, "smoke-veh-00001", "gps"),
        ("é/x", 0, "d", "s"),
    ]:
        ids = MessageIds(scenario, seed, device, stream)
        for seq in (1, 2, 9, 10, 999, 1000, 65536, 10**12):
            assert ids(seq) == uuid5(scenario, seed, device, stream, seq)
    lines, fleet = simulate("smoke")
    sent = messages(lines)
    assert sent
    for topic, m in sent:
        want = uuid5(
            fleet.hub.scenario, fleet.hub.seed, m["device_id"], topic.split("/")[1], m["seq"]
        )
        assert m["id"] == want, (topic, m["seq"])


def test_shards_together_publish_exactly_the_unsharded_stream() -> None:
    """Every shard simulates the whole fleet (the traffic model needs every car's density) and
    publishes only its own devices, so two shards' messages are the whole run's, once each."""
    from devices import runner
    from devices.emit import JsonLinesSink
    from devices.fleet import build
    from devices.loader import load
    from devices.snapshots import Uploader
    from devices.state import SeqState

    def run(shard: tuple[int, int] | None) -> list[bytes]:
        lines: list[bytes] = []
        fleet = build(
            load("smoke"), JsonLinesSink(lines.append), SeqState(), shard=shard,
            uploader=Uploader("cityfleet"),
        )  # fmt: skip
        runner.run(fleet.env, runner.NoNetwork(), fleet.until, fleet.done, None)
        fleet.hub.flush_late()
        return lines

    first, second = run((0, 2)), run((1, 2))
    assert first and second
    assert sorted(first + second) == sorted(run(None))
