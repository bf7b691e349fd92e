"""Spark: Kafka → silver on S3 in local[2], beside Spark's rate source → local Parquet.

Three figures, all measured in one run on one SparkSession:

* rows/s from Kafka into silver (the real job: parse and validate once, bronze and silver as
  Delta tables on S3, each write idempotent), as rows over the time its micro-batches took,
  the JVM's warm-up batches left out, with the longest batch shown against the 10 s trigger
  (the rate is sustainable while batches finish inside the trigger), and where a batch's time
  goes (the writer's own per-step clock, summed over the measured batches);
* the same machine's Spark ``rate`` source → local Parquet rate, the reference;
* latency from a message's event ``timestamp`` to its row being readable in silver (median,
  p95), with messages produced live at a steady rate and a 2 s trigger.

``python -m benchmarks.spark [--quick]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.results import GOALS, SPARK, Row, report, row
from benchmarks.watch import SilverWatch, pct
from cityconf.env import load_env
from contract import VEHICLE, encode, format_timestamp, message_id
from stack import kafka
from stack.kafka import DATA_TOPIC_PARTITIONS, topic_replication

TRIGGER_S = 10
# A batch holds what the 10 s trigger gathers at the rate the goal asks of this stage (0.75x the
# bridge's one-process rate measured in the same run), so "every batch shorter than its
# trigger" is the goal itself: at that rate the job keeps up. A batch's fixed cost (the summary
# job, each Delta table's snapshot for the txnAppId check, S3 requests and commit) is then paid
# as often as in a pipeline running at that rate. Without a bridge figure (``--only spark``):
# 250k rows, the goal at the ~33k msg/s bridge of the first 2-core machines.
DEFAULT_PER_BATCH = 250_000
# A fresh JVM spends its first minutes compiling Spark, Delta and the generated code (on two
# cores the JIT threads take CPU from the tasks): 250k-row batches took 37.5, 20.7, 19.6, 14.3,
# 13.6, 14.3, 12.0 and 11.9 s one after another on this machine kind. A streaming job runs for
# hours, so the rate is the warm JVM's: batches of the first 750k rows warm up, the next three
# batches count.
WARM_UP_ROWS = 750_000
MEASURED_BATCHES = 3


def batch_size(bridge_rate: float | None) -> int:
    """Rows a batch holds: what the trigger gathers at the goal's share of ``bridge_rate``."""
    if bridge_rate is None:
        return DEFAULT_PER_BATCH
    return max(10_000, int(round(GOALS[SPARK] * bridge_rate * TRIGGER_S, -3)))


def _message(device: str, seq: int, at: datetime) -> bytes:
    return encode(
        {
            "id": message_id("bench", 1, device, VEHICLE.name, seq),
            "device_id": device,
            "seq": seq,
            "timestamp": format_timestamp(at),
            "scenario": "bench",
            "latitude": 52.0,
            "longitude": -1.5,
            "speed_kmh": 72.5,
            "heading_deg": 310.0,
            "make": "Ford",
            "model": "Transit",
            "year": 2021,
            "fuel_type": "diesel",
            "vehicle_type": "van",
            "odometer_km": 10_000.0 + seq,
            "fuel_level_pct": 64.0,
            "route_id": "london-birmingham",
            "trip_id": f"{device}-1",
            "distance_km": seq * 0.02,
        }
    )


def _topic(env: Mapping[str, str], prefix: str) -> str:
    from confluent_kafka.admin import NewTopic

    topic = prefix + VEHICLE.kafka_topic
    # Held in a name until the future completes: a client collected mid-call fails it.
    admin = kafka.admin(env["KAFKA_BOOTSTRAP_SERVERS"])
    # As many partitions as the stack gives a data topic: a multiple of the cores. As many
    # copies as its topics too: a cluster's brokers refuse acks=all writes to fewer copies than
    # their min.insync.replicas (2).
    new = NewTopic(topic, DATA_TOPIC_PARTITIONS, topic_replication(env))
    admin.create_topics([new])[topic].result(30)
    return topic


def _drop_topic(env: Mapping[str, str], topic: str) -> None:
    """A benchmark topic holds its run's messages only: gone afterwards, not left on disk."""
    admin = kafka.admin(env["KAFKA_BOOTSTRAP_SERVERS"])
    admin.delete_topics([topic])[topic].result(30)


def _produce(env: Mapping[str, str], topic: str, n: int, devices: int = 100) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "linger.ms": 20})
    now = datetime.now(UTC)
    for i in range(n):
        device = f"bench-{i % devices:04d}"
        while True:
            try:
                p.produce(topic, key=device.encode(), value=_message(device, i // devices + 1, now))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(60)


def _settings(env: Mapping[str, str], prefix: str, tmp: Path, *extra: str):
    from spark.settings import StreamSettings, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--streams",
            "vehicle",
            "--topic-prefix",
            prefix,
            "--checkpoint",
            str(tmp / prefix),
            "--output-root",
            f"s3a://{env['S3_BUCKET']}/bench/{prefix.rstrip('-')}/",
            *extra,
        ]
    )
    return StreamSettings.from_args(args, env)


def _batches(query) -> list[tuple[int, float]]:
    return [
        (p["numInputRows"], p["durationMs"]["triggerExecution"] / 1000)
        for p in query.recentProgress
        if p["numInputRows"]
    ]


def kafka_to_silver(
    spark,
    env: Mapping[str, str],
    per_batch: int,
    tmp: Path,
    warm_up_rows: int = WARM_UP_ROWS,
    measured_batches: int = MEASURED_BATCHES,
) -> tuple[float, float, int, float, dict[str, float]]:
    """Rows/s over the measured batches, the longest of them, how many batches warmed up and
    their time, and the measured batches' seconds per step of the writer.

    The warm-up batches (those of the first ``warm_up_rows``) also start the Kafka consumers
    and Python workers and give the JIT its time, so they are reported apart, as the rate
    reference drops its first.
    """
    from spark.stream import start_query

    warm_up = -(-warm_up_rows // per_batch)
    n = per_batch * (warm_up + measured_batches)
    prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    topic = _topic(env, prefix)
    try:
        _produce(env, topic, n)
        # The job's own trigger over the backlog, a batch at most ``per_batch`` rows: messages
        # arriving at the goal's rate. A batch that ends inside its trigger leaves the job idle
        # until the next, as in a pipeline that keeps up (the tables' snapshot state is then
        # computed in that time, spark.snapshots); a longer one is followed at once.
        s = _settings(
            env,
            prefix,
            tmp,
            "--trigger",
            f"{TRIGGER_S} seconds",
            "--max-offsets-per-trigger",
            str(per_batch),
        )
        query, writer = start_query(spark, s, dead_letters=False)
        try:
            while len(_batches(query)) < warm_up + measured_batches:
                if query.exception() is not None:
                    raise RuntimeError(f"Kafka → silver query failed: {query.exception()}")
                time.sleep(0.5)
        finally:
            query.stop()
            writer.close()
    finally:
        _drop_topic(env, topic)
    landed = writer.totals.get(VEHICLE.kafka_topic, {}).get("silver")
    assert landed == n, writer.totals  # every message once
    times = [d for _, d in _batches(query)]
    steps: dict[str, float] = {}
    for laps in writer.history[warm_up:]:
        for step, seconds in laps.items():
            steps[step] = steps.get(step, 0.0) + seconds
    measured = times[warm_up:]
    rate = per_batch * len(measured) / sum(measured)
    return rate, max(measured), warm_up, sum(times[:warm_up]), steps


def rate_to_parquet(spark, seconds: float, tmp: Path) -> tuple[float, float]:
    query = (
        spark.readStream.format("rate")
        .option("rowsPerSecond", 150_000)
        .load()
        .writeStream.format("parquet")
        .option("path", str(tmp / "rate"))
        .option("checkpointLocation", str(tmp / "rate-ck"))
        .trigger(processingTime=f"{TRIGGER_S // 2} seconds")
        .start()
    )
    time.sleep(seconds)
    # On a busy machine the first batches take longer: wait for two measured ones (bounded).
    deadline = time.monotonic() + 10 * seconds
    while len(_batches(query)) < 3 and time.monotonic() < deadline:
        time.sleep(1)
    query.stop()
    batches = _batches(query)[1:]  # the first batch is the warm-up
    return sum(r for r, _ in batches) / sum(d for _, d in batches), max(d for _, d in batches)


def latency(spark, env: Mapping[str, str], seconds: float, tmp: Path) -> SilverWatch:
    """Rows produced live at 200 msg/s, watched into silver (``SilverWatch``)."""
    from drills.flow import lake_root
    from spark.stream import start_query

    prefix = f"bench-lat-{uuid.uuid4().hex[:8]}-"
    topic = _topic(env, prefix)
    s = _settings(env, prefix, tmp, "--trigger", "2 seconds")  # a fresh, empty topic
    query, writer = start_query(spark, s, dead_letters=False)
    while not query.recentProgress:
        if query.exception() is not None:
            raise RuntimeError(f"latency query failed: {query.exception()}")
        time.sleep(0.5)
    watch = SilverWatch(env, lake_root(env, f"bench/{prefix.rstrip('-')}"))
    stop = threading.Event()

    def produce_live() -> None:
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "linger.ms": 5})
        seq = 0
        while not stop.is_set():
            seq += 1
            now = datetime.now(UTC)
            for d in range(20):  # 20 devices, 10 messages/s each
                device = f"lat-{d:02d}"
                p.produce(topic, key=device.encode(), value=_message(device, seq, now))
            p.poll(0)
            time.sleep(0.1)
        p.flush(30)

    producer = threading.Thread(target=produce_live, daemon=True)
    producer.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        watch.poll()
        time.sleep(0.25)
    stop.set()
    producer.join()
    for _ in range(20):
        watch.poll()
        time.sleep(0.5)
    query.stop()
    writer.close()
    _drop_topic(env, topic)
    return watch


def run(env: dict[str, str], quick: bool, bridge_rate: float | None = None) -> list[Row]:
    """``bridge_rate``: the bridge's one-process msg/s from the same run, which sizes the
    batches (``batch_size``)."""

    from spark.session import build_session

    spark = build_session("cityfleet-bench-spark", env, extra_conf={"spark.ui.enabled": "false"})
    tmp = Path(tempfile.mkdtemp(prefix="cityfleet-bench-spark-"))
    try:
        per_batch = batch_size(bridge_rate)
        kafka_rate, kafka_batch, warm_batches, warm_up, steps = kafka_to_silver(
            spark, env, per_batch, tmp
        )
        print(
            f"kafka → silver: {kafka_rate:,.0f} rows/s, longest batch {kafka_batch:.1f} s, {steps}"
        )
        rate, rate_batch = rate_to_parquet(spark, 15 if quick else 60, tmp)
        watch = latency(spark, env, 20 if quick else 90, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lat, seen = watch.latencies, watch.seen_latencies
    sizing = (
        f"{TRIGGER_S} s at {GOALS[SPARK]}x the bridge's {bridge_rate:,.0f} msg/s"
        if bridge_rate is not None
        else "no bridge figure in this run: the default"
    )
    total = sum(steps.values()) or 1.0
    breakdown = "; ".join(f"{k} {100 * v / total:.0f} %" for k, v in steps.items())
    return [
        row(
            SPARK,
            kafka_rate,
            "rows/s",
            reference="Spark rate source → local Parquet, same run",
            reference_value=rate,
            note=f"batches of {per_batch:,} msgs ({sizing}); after {warm_batches} warming up "
            f"the JVM ({warm_up:.1f} s) the longest of {MEASURED_BATCHES} took "
            f"{kafka_batch:.1f} s (trigger {TRIGGER_S} s); "
            f"rate batches ≤ {rate_batch:.1f} s; where a batch's time went: {breakdown}",
        ),
        row(
            "spark: event time → readable in silver, median",
            pct(lat, 50),
            "s",
            note=f"2 s trigger, {len(lat):,} rows at 200 msg/s; to each commit's timestamp "
            f"(first seen by the watch, polling every 0.25 s: {pct(seen, 50):.2f} s)",
        ),
        row(
            "spark: event time → readable in silver, p95",
            pct(lat, 95),
            "s",
            note=f"first seen by the watch: {pct(seen, 95):.2f} s",
        ),
    ]


if __name__ == "__main__":
    report(run(load_env(), quick="--quick" in sys.argv), "spark")
