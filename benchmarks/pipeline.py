"""End to end: devices → Mosquitto → bridge → Kafka → Spark → silver on S3, audit clean.

Two figures: the sustained rate from the first publish to the last row readable in silver
(devices on the as-fast-as-possible clock), and the latency from a message's event time to
its row being readable in silver (devices on the real-time clock, so event time is wall time).
Each run writes to a fresh lake root and checkpoint and reads Kafka from the latest offsets, so
earlier data on the shared stack does not count.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import pyarrow.dataset as ds

from benchmarks.cpu import CpuMeter, bound, breakdown
from benchmarks.results import Row, report, row
from cityconf.env import load_env
from cityconf.errors import UserError
from cityconf.layout import Layout
from contract import DATA_STREAMS
from contract.manifest import Manifest
from drills import children
from drills.flow import lake_root, s3_filesystem
from drills.harness import end_session
from spark.lake import silver
from spark.reader import LakeReader
from stack.process import running


class SilverWatch:
    """Follows a lake's silver tables; each newly committed file's rows get latency = the time
    its commit was first seen − event time (a file Spark has written but Delta has not yet
    committed is not readable, so it does not count)."""

    def __init__(self, env: Mapping[str, str], root_uri: str) -> None:
        self.reader = LakeReader.from_env(env, root_uri)
        self.s3 = s3_filesystem(env)
        self.seen: set[str] = set()
        self.latencies: list[float] = []
        self.rows = 0
        self.last_row_at = 0.0

    def poll(self) -> None:
        now = time.time()
        for stream in DATA_STREAMS:
            table = self.reader.table(silver(stream), refresh=True)
            if table is None:
                continue
            fresh = [f for f in table.file_uris() if f not in self.seen]
            if not fresh:
                continue
            self.seen.update(fresh)
            paths = [f.removeprefix("s3://").removeprefix("s3a://") for f in fresh]
            stamps = (
                ds.dataset(paths, format="parquet", filesystem=self.s3)
                .to_table(columns=["timestamp"])
                .column("timestamp")
                .to_pylist()
            )
            self.rows += len(stamps)
            self.last_row_at = now
            for stamp in stamps:
                when = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                self.latencies.append(now - when.timestamp())


def run_pipeline(
    env: Mapping[str, str],
    scenario: str,
    device_args: list[str],
    label: str,
    timeout: float,
    trigger: str,
    fleet_lead_s: float = 0.0,
) -> tuple[SilverWatch, int, float, CpuMeter]:
    """Run one scenario through the pipeline; return the watch, messages expected, start time
    and the CPU each part spent from the first publish on.

    ``fleet_lead_s``: how far a fast clock puts event times ahead of Kafka's timestamps; the
    streaming job's clock guard allows that much on top of its default five minutes.
    """
    run_id = f"{label}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    run_dir = Layout.from_env(env).root / "bench" / run_id
    run_dir.mkdir(parents=True)
    root_uri = lake_root(env, f"bench/{run_id}")
    child_env = {**env, "PYTHONUNBUFFERED": "1"}
    stream = children.stream(
        run_dir,
        child_env,
        "--trigger",
        trigger,
        "--output-root",
        root_uri,
        "--checkpoint",
        str(run_dir / "checkpoint"),
        "--starting-offsets",
        "latest",
        "--max-skew",
        f"{fleet_lead_s + 300:.0f} seconds",
    )
    # A session of its own, forgotten afterwards: the stack's bridge session may hold what
    # earlier runs published while no bridge ran, which is not this run's traffic.
    client_id = f"bench-bridge-{run_id}"
    bridge = children.bridge(run_dir, child_env, "--client-id", client_id)
    manifest = run_dir / "manifest.json"
    devices = children.devices(
        scenario,
        run_dir,
        child_env,
        "--manifest",
        str(manifest),
        "--state-dir",
        str(run_dir / "device-state"),
        "--start",
        "now",
        *device_args,
    )
    watch = SilverWatch(env, root_uri)
    cpu = CpuMeter()
    with running(stream, bridge):
        children.wait_for_query(run_dir / "checkpoint", stream, timeout=180)
        cpu.add("spark", [stream.pid])
        cpu.add("bridge", [bridge.pid])
        cpu.add_servers(server_ports(env))
        cpu.start()
        started = time.time()
        devices.start()
        cpu.add("devices", [devices.pid])
        while devices.alive:
            cpu.sample()
            watch.poll()
            time.sleep(1)
        devices.check()
        expected = sum(e.count for e in Manifest.read(manifest).expected())
        deadline = time.monotonic() + timeout
        while watch.rows < expected and time.monotonic() < deadline:
            stream.check()
            cpu.sample()
            watch.poll()
            time.sleep(0.5)
        cpu.sample()
    end_session(env, client_id)
    if watch.rows != expected:
        # Insert-only writes (appends, insert-only MERGE) never rewrite a file, so the rows of
        # the files committed to silver are its rows: more than published means duplicates.
        raise UserError(
            f"{label}: silver holds {watch.rows} rows for {expected} published; see {run_dir}"
        )
    return watch, expected, started, cpu


def server_ports(env: Mapping[str, str]) -> dict[str, int]:
    """The local servers' ports, from the stack's ``.env``."""
    from urllib.parse import urlsplit

    return {
        "mosquitto": int(env.get("MQTT_PORT", "1883")),
        "kafka": int(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].rsplit(":", 1)[1]),
        "s3": urlsplit(env["S3_ENDPOINT_URL"]).port or 80,
    }


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def run(env: Mapping[str, str], quick: bool) -> list[Row]:
    import os

    rows: list[Row] = []
    # Enough messages that Spark's fixed costs (start of the query, first batch's code
    # generation, each table's commit) are a small part of the run: ~94k and ~229k messages.
    duration = "900" if quick else "1800"
    watch, expected, started, cpu = run_pipeline(
        env,
        "rush-hour",
        ["--fast", "--duration", duration],
        "throughput",
        timeout=600,
        # The streaming job's own default: a batch's fixed cost (summary job, each Delta
        # table's snapshot and commit) is paid every 10 s, not every 2 s as in the latency run.
        trigger="10 seconds",
        fleet_lead_s=float(duration),  # --fast publishes the whole simulated span at once
    )
    rate = expected / max(watch.last_row_at - started, 1e-3)
    spent = cpu.seconds()
    cores = os.cpu_count() or 1
    ceiling = bound(spent, expected, cores)
    rows.append(
        row(
            "end to end: devices → silver, fast clock",
            rate,
            "msg/s",
            reference=f"ceiling on {cores} cores from the CPU each part spent, same run",
            reference_value=ceiling,
            note=f"{expected:,} messages, each in silver once; 10 s trigger",
        )
    )
    rows.append(
        row(
            "end to end: CPU per message, all parts",
            1e6 * sum(spent.values()) / expected,
            "µs",
            note=breakdown(spent, expected),
        )
    )
    watch, expected, _, _ = run_pipeline(
        env,
        "london-birmingham",
        ["--speed", "1", "--duration", "60" if quick else "180"],
        "latency",
        timeout=300,
        trigger="2 seconds",
    )
    lat = watch.latencies
    rows.append(
        row(
            "end to end: event time → readable in silver, median",
            pct(lat, 50),
            "s",
            note="2 s trigger; real-time clock",
        )
    )
    rows.append(row("end to end: event time → readable in silver, p95", pct(lat, 95), "s"))
    return rows


if __name__ == "__main__":
    report(run(load_env(), quick="--quick" in sys.argv), "pipeline")
