"""Bridge benchmarks: msg/s through one bridge process and through two on a shared subscription.

QoS 1, ack-after-Kafka, valid ~400-byte vehicle messages. The backlog is pre-loaded into the
bridge's persistent session (a first short run creates it), so the figure is the bridge's own
rate: first message received to last PUBACK sent, ``busy_s`` of the JSON summary each bridge
writes at exit (``--summary``).
Reference: Mosquitto's raw QoS 1 rate to one ``mosquitto_sub`` in the same run.
Run: ``python -m benchmarks.bridge [--quick]``.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path
from typing import NamedTuple

import orjson

from benchmarks.cpu import CpuMeter, children_seconds
from benchmarks.reference import mosquitto_raw_rate
from benchmarks.results import Row, report, row
from cityconf.env import load_env
from contract import message_id
from drills.harness import BridgeRun, end_session, publish

DEVICES = 8


def _message(device: str, seq: int) -> bytes:
    return orjson.dumps(
        {
            "id": message_id("bench", 1, device, "vehicle", seq),
            "device_id": device,
            "seq": seq,
            "timestamp": "2026-11-23T08:00:00.000Z",
            "scenario": "bench",
            "latitude": 52.4862,
            "longitude": -1.8904,
            "speed_kmh": 87.5,
            "heading_deg": 312.0,
            "make": "Ford",
            "model": "Transit",
            "year": 2021,
            "fuel_type": "diesel",
            "vehicle_type": "van",
            "odometer_km": 48211.3,
            "fuel_level_pct": 61.2,
            "route_id": "london-birmingham",
            "trip_id": "trip-1",
            "distance_km": 101.7,
        }
    )


def _backlog(tag: str, n: int) -> list[tuple[str, bytes]]:
    devices = [f"{tag}-{d}" for d in range(DEVICES)]
    return [
        (f"city/vehicle/{devices[i % DEVICES]}", _message(devices[i % DEVICES], i // DEVICES + 1))
        for i in range(n)
    ]


def _bridges(env: dict[str, str], tmp: Path, tag: str, ids: list[str], group: str | None,
             *extra: str) -> list[BridgeRun]:  # fmt: skip
    filters = [a for d in range(DEVICES) for a in ("--subscribe", f"city/+/{tag}-{d}")]
    share = ["--share-group", group] if group else []
    return [
        BridgeRun(
            env, ["--client-id", cid, *share, *filters, "--log-level", "INFO", *extra],
            tmp / f"{cid}.log",
        ).start()
        for cid in ids
    ]  # fmt: skip


class Drain(NamedTuple):
    """One backlog drained by ``processes`` bridges."""

    rate: float
    """msg/s: the backlog over the slowest bridge's busy time."""
    cpu_s: float
    """The bridges' CPU seconds for the backlog: their run's less the first, idle run's (start,
    connect, subscribe, exit), which costs the same with no message."""


def measure(
    env: dict[str, str], tmp: Path, n: int, processes: int, servers: CpuMeter | None = None
) -> Drain:
    """``processes`` bridges draining an ``n``-message backlog; ``servers``, when given, is
    started and sampled around the drain only (the backlog's publishing is not the bridge's)."""
    tag = f"bb{uuid.uuid4().hex[:6]}"
    ids = [f"bench-bridge-{tag}-{i}" for i in range(processes)]
    group = f"bench{tag}" if processes > 1 else None
    try:
        before = children_seconds()
        for b in _bridges(env, tmp, tag, ids, group, "--idle-exit", "1"):
            if b.wait(60) != 0:  # creates the persistent sessions and subscriptions
                raise RuntimeError(f"bridge failed:\n{b.log()[-2000:]}")
        idle_cpu = children_seconds() - before
        publish(env, _backlog(tag, n))
        if servers is not None:
            servers.start()
        before = children_seconds()
        runs = _bridges(env, tmp, tag, ids, group, "--idle-exit", "2")
        stats = []
        for b in runs:
            if b.wait(600) != 0:
                raise RuntimeError(f"bridge failed:\n{b.log()[-2000:]}")
            stats.append(b.final_stats())
        busy_cpu = children_seconds() - before
        if servers is not None:
            servers.sample()
    finally:
        for cid in ids:
            end_session(env, cid)
    acked = sum(s.get("acked", 0) for s in stats)
    if acked < n:
        raise RuntimeError(f"only {acked:.0f} of {n} messages acked")
    return Drain(n / max(s["busy_s"] for s in stats), max(busy_cpu - idle_cpu, 0.0))


def run(env: dict[str, str], quick: bool) -> list[Row]:
    n = 40_000 if quick else 200_000
    raw = mosquitto_raw_rate(env, n, qos=1)
    ref = "mosquitto_pub→mosquitto_sub QoS 1, same run"
    with tempfile.TemporaryDirectory() as tmp:
        one = measure(env, Path(tmp), n, 1).rate
        two = measure(env, Path(tmp), n, 2).rate
    return [
        row("bridge, 1 process, QoS 1, ack after Kafka", one, "msg/s", ref, raw,
            note="goal >= 20,000 msg/s"),
        row("bridge, 2 processes, $share group", two, "msg/s", ref, raw,
            note=f"{two / one:.2f}x one process (goal >= 1.7x)"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer messages (about 1 minute)")
    args = p.parse_args(argv)
    report(run(load_env(), args.quick), "bridge")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
