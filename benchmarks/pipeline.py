"""End to end: devices → Mosquitto → bridge → Kafka → Spark → silver on S3, audit clean.

Two figures: the sustained rate from the first publish to the last row readable in silver
(devices on the as-fast-as-possible clock), and the latency from a message's event time to
its row being readable in silver (devices on the real-time clock, so event time is wall time).
Each run writes to a fresh lake root and checkpoint and reads Kafka from the latest offsets, so
earlier data on the shared stack does not count. A streaming job runs for hours, so both figures
are the warm job's: a first, unmeasured run of the same scenario under other device ids goes
through the whole pipeline before the measured one starts (``warm_up``).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from benchmarks.cpu import CpuMeter, bound, breakdown
from benchmarks.results import Row, report, row
from benchmarks.watch import SilverWatch, pct
from cityconf.env import load_env
from cityconf.errors import UserError
from cityconf.layout import Layout
from contract.manifest import Manifest
from drills import children
from drills.flow import lake_root
from drills.harness import end_session, short_session
from spark.settings import DEFAULT_LATE_AFTER_S
from stack.process import Process, running


def run_pipeline(
    env: Mapping[str, str],
    scenario: str,
    device_args: list[str],
    label: str,
    timeout: float,
    trigger: str,
    fleet_lead_s: float = 0.0,
    warm_up_args: list[str] | None = None,
) -> tuple[SilverWatch, int, float, CpuMeter]:
    """Run one scenario through the pipeline; return the watch, messages expected, start time
    and the CPU each part spent from the first publish on.

    ``warm_up_args``: the device arguments of an unmeasured first run (``warm_up``).

    ``fleet_lead_s``: how far a fast clock puts event times ahead of Kafka's timestamps; the
    streaming job's clock guard allows that much on top of its default five minutes, and its
    late record that much on top of its default lateness.
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
        # Nor is a row late for being behind what the fast clock published a moment before.
        "--late-after",
        f"{fleet_lead_s + DEFAULT_LATE_AFTER_S:.0f} seconds",
    )
    # A session of its own, forgotten afterwards (and soon after a kill): the stack's bridge
    # session may hold what earlier runs published while no bridge ran, not this run's traffic.
    client_id = f"bench-bridge-{run_id}"
    bridge = children.bridge(run_dir, child_env, "--client-id", client_id, *short_session(run_dir))
    manifest = run_dir / "manifest.json"
    devices = fleet(scenario, run_dir, child_env, manifest, "device-state", *device_args)
    watch = SilverWatch(env, root_uri)
    cpu = CpuMeter()
    with running(stream, bridge):
        children.wait_for_query(run_dir / "checkpoint", stream, timeout=180)
        if warm_up_args is not None:
            warm_up(scenario, warm_up_args, run_dir, child_env, stream, watch, timeout)
        cpu.add("spark", [stream.pid], jvm=True)
        cpu.add("bridge", [bridge.pid])
        cpu.add_servers(server_ports(env))
        cpu.start()
        started = time.time()
        devices.start()
        cpu.add("devices", [devices.pid])
        expected = publish_and_land(devices, manifest, stream, watch, timeout, cpu.sample)
        cpu.sample()
    end_session(env, client_id)
    if watch.rows != expected:
        # Insert-only writes (appends, insert-only MERGE) never rewrite a file, so the rows of
        # the files committed to silver are its rows: more than published means duplicates.
        raise UserError(
            f"{label}: silver holds {watch.rows} rows for {expected} published; see {run_dir}"
        )
    return watch, expected, started, cpu


def warm_up(
    scenario: str,
    device_args: list[str],
    run_dir: Path,
    env: Mapping[str, str],
    stream: Process,
    watch: SilverWatch,
    timeout: float,
) -> None:
    """Run the scenario once under the device id prefix ``warmup`` and wait for its rows in
    silver, then restart the watch.

    A fresh JVM spends its first minutes loading and compiling Spark, Delta and the generated
    code, and each table's first write creates it: measured on 2 cores, the cold job took ~45 s
    over its first 61,191 rows, which a 10 s trigger handles in a few seconds once warm. The
    warm-up's devices have ids of their own, so their rows are told apart and the measured run
    starts from an empty manifest.
    """
    manifest = run_dir / "warm-up-manifest.json"
    devices = fleet(
        scenario, run_dir, env, manifest, "warm-up-state", "--id-prefix", "warmup", *device_args
    )
    with running(devices):
        expected = publish_and_land(devices, manifest, stream, watch, timeout)
    if watch.rows != expected:
        raise UserError(f"warm-up: silver holds {watch.rows} rows for {expected}; see {run_dir}")
    watch.restart()


def fleet(
    scenario: str, run_dir: Path, env: Mapping[str, str], manifest: Path, state: str, *extra: str
) -> Process:
    """The scenario's devices on the wall clock's date, counting into ``manifest``, their seq
    counters in ``run_dir/state``."""
    return children.devices(
        scenario,
        run_dir,
        env,
        "--manifest",
        str(manifest),
        "--state-dir",
        str(run_dir / state),
        "--start",
        "now",
        *extra,
    )


def publish_and_land(
    devices: Process,
    manifest: Path,
    stream: Process,
    watch: SilverWatch,
    timeout: float,
    sample: Callable[[], None] = lambda: None,
) -> int:
    """Follow silver while the (started) devices publish, then until it holds every message
    the manifest counts or ``timeout`` passes; return that count."""
    while devices.alive:
        sample()
        watch.poll()
        time.sleep(1)
    devices.check()
    expected = sum(e.count for e in Manifest.read(manifest).expected())
    deadline = time.monotonic() + timeout
    while watch.rows < expected and time.monotonic() < deadline:
        stream.check()
        sample()
        watch.poll()
        time.sleep(0.5)
    return expected


def server_ports(env: Mapping[str, str]) -> dict[str, int]:
    """The local servers' ports, from the stack's ``.env``."""
    from urllib.parse import urlsplit

    return {
        "mosquitto": int(env.get("MQTT_PORT", "1883")),
        "kafka": int(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].rsplit(":", 1)[1]),
        "s3": urlsplit(env["S3_ENDPOINT_URL"]).port or 80,
    }


def run(env: Mapping[str, str], quick: bool) -> list[Row]:
    import os

    rows: list[Row] = []
    # Enough messages that the last batch's wait for its trigger and its fixed costs (each
    # Delta table's snapshot and commit) are a small part of the run: ~110k and ~230k messages.
    duration = "1200" if quick else "1800"
    fast_run = ["--fast", "--duration", duration]
    watch, expected, started, cpu = run_pipeline(
        env,
        "rush-hour",
        fast_run,
        "throughput",
        timeout=600,
        # The streaming job's own default: a batch's fixed cost (summary job, each Delta
        # table's snapshot and commit) is paid every 10 s, not every 2 s as in the latency run.
        trigger="10 seconds",
        fleet_lead_s=float(duration),  # --fast publishes the whole simulated span at once
        # The same run again: JIT compilation measured per thread of the job's JVM took 32 s of
        # CPU over a 7,000-message warm-up and 30 s more over the 108,000 measured after it.
        warm_up_args=fast_run,
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
            note=f"{expected:,} messages, each in silver once; 10 s trigger; after a warm-up run",
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
    jit = cpu.jit()["spark"]
    rows.append(
        row(
            "end to end: CPU per message, Spark's JIT compiler",
            1e6 * jit / expected,
            "µs",
            note=f"{jit / max(spent['spark'], 1e-9):.0%} of Spark's CPU: its JVM still "
            "compiling after the warm-up run (see spark/README.md)",
        )
    )
    watch, expected, _, _ = run_pipeline(
        env,
        "london-birmingham",
        ["--speed", "1", "--duration", "60" if quick else "180"],
        "latency",
        timeout=300,
        trigger="2 seconds",
        # Within the clock guard's five minutes ahead of Kafka's timestamps.
        warm_up_args=["--fast", "--duration", "240"],
    )
    lat, seen = watch.latencies, watch.seen_latencies
    rows.append(
        row(
            "end to end: event time → readable in silver, median",
            pct(lat, 50),
            "s",
            note=f"2 s trigger; real-time clock; to each commit's timestamp (first seen by the "
            f"watch, polling about every second: {pct(seen, 50):.2f} s)",
        )
    )
    rows.append(
        row(
            "end to end: event time → readable in silver, p95",
            pct(lat, 95),
            "s",
            note=f"first seen by the watch: {pct(seen, 95):.2f} s",
        )
    )
    return rows


if __name__ == "__main__":
    report(run(load_env(), quick="--quick" in sys.argv), "pipeline")
