"""``python -m spark.stream``: Kafka → the Delta lake (bronze, silver, quarantine, late, dead
letters), exactly once.

One streaming query reads every stream topic (and the bridge's ``dead_letter`` topic) and hands
each micro-batch to ``spark.sink.BatchWriter``, which parses and validates each record once and
writes every table with Delta's idempotent writes. No Spark state store. Runs the same under
``spark-submit spark/stream.py`` on a cluster.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from cityconf.env import load_env
from cityconf.errors import UserError
from cityconf.keys import value
from spark.lake import Lake
from spark.settings import StreamSettings, add_arguments, check_offsets_cover
from spark.sink import BatchWriter, Fault

log = logging.getLogger("spark.stream")
FAULT_ENV = "CITYFLEET_STREAM_FAULT"
"""Test seam: ``<batch_id>:<k>`` fails that batch after k of its table writes (spark.sink)."""


FETCH_MAX_WAIT_MS = 10
"""How long the broker may hold a fetch open for more data (Kafka's default: 500 ms).

Spark reads known offset ranges, so it never needs to wait for data; but its consumer's
prefetch past a range's end waits that long at the broker, and the next partition's fetch
waits behind it. With 30 partitions (five topics of six) a batch of 28 records took 8.5 s to
read with the default and 1.4 s with 10 ms; the micro-batch's read+parse+check+summary step
for a handful of records 10-11 s against 3 s.
"""


def kafka_frame(spark: SparkSession, settings: StreamSettings, topics: list[str]) -> Any:
    """The query's input: one Kafka read of every topic, headers included."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", ",".join(topics))
        .option("startingOffsets", settings.starting_offsets)
        .option("includeHeaders", "true")
        .option("failOnDataLoss", "true")
        .option("kafka.fetch.max.wait.ms", str(FETCH_MAX_WAIT_MS))
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
    return reader.load()


def start_query(
    spark: SparkSession, settings: StreamSettings, dead_letters: bool
) -> tuple[StreamingQuery, BatchWriter]:
    from spark.session import micro_batch_conf

    for key, setting in micro_batch_conf().items():
        spark.conf.set(key, setting)
    topics = {settings.topic(s): s for s in settings.streams}
    dead = settings.dead_letter_topic if dead_letters else None
    writer = BatchWriter(
        where=Lake(settings.output_root),
        topics=topics,
        dead_letter_topic=dead,
        checkpoint=settings.query_checkpoint,
        late_after_s=settings.late_after_s,
        max_skew_s=settings.max_skew_s,
        threads=settings.write_threads,
        fault=Fault.parse(os.environ.get(FAULT_ENV)),
    )
    builder = (
        kafka_frame(spark, settings, [*topics, *([dead] if dead else [])])
        .writeStream.queryName("cityfleet_lake")
        .option("checkpointLocation", settings.query_checkpoint)
        .foreachBatch(writer)
    )
    if settings.available_now:
        builder = builder.trigger(availableNow=True)
    else:
        builder = builder.trigger(processingTime=settings.trigger)
    return builder.start(), writer


def preflight(settings: StreamSettings, env: Mapping[str, str]) -> bool:
    """Fail fast, in one line, when Kafka or S3 is down or a stream topic is missing.

    Returns whether the dead-letter topic exists (it is read when it does).
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    try:
        topics = admin.list_topics(timeout=10).topics
    except KafkaException:
        raise UserError(
            f"Kafka at {settings.bootstrap_servers} is not answering: start the stack with "
            "`make up` (or `python -m stack up`)"
        ) from None
    missing = [settings.topic(s) for s in settings.streams if settings.topic(s) not in topics]
    if missing:
        raise UserError(
            f"Kafka topic(s) {', '.join(missing)} do not exist: `make up` creates the stream "
            "topics; check --streams/--topic-prefix",
            exit_code=2,
        )
    dead = settings.dead_letter_topic
    read = [settings.topic(s) for s in settings.streams] + ([dead] if dead in topics else [])
    if not settings.resumes:
        check_offsets_cover(
            settings.starting_offsets, {t: topics[t].partitions.keys() for t in read}
        )
    if settings.output_root.startswith("s3a://") and env.get("S3_ENDPOINT_URL"):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = settings.output_root.removeprefix("s3a://").split("/", 1)[0]
        s3 = boto3.client(
            "s3",
            endpoint_url=env["S3_ENDPOINT_URL"],
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=value(env, "AWS_REGION"),
        )
        try:
            s3.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise UserError(
                f"S3 bucket {bucket!r} at {env['S3_ENDPOINT_URL']} is not reachable ({exc}): "
                "start the stack with `make up`"
            ) from None
    return dead in topics


def session(settings: StreamSettings, env: Mapping[str, str], app: str) -> SparkSession:
    from spark.session import build_session

    return build_session(
        app,
        dict(env),
        master=settings.master,
        extra_conf={"spark.sql.shuffle.partitions": str(settings.shuffle_partitions)},
    )


def run(settings: StreamSettings, env: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Run the query; return per-topic totals when it ends (available-now)."""
    dead_letters = preflight(settings, env)
    spark = session(settings, env, "cityfleet-stream")
    query, writer = start_query(spark, settings, dead_letters)
    log.info(
        "streaming %s%s from %s into %s (checkpoint %s, %s)",
        ", ".join(settings.topic(s) for s in settings.streams),
        f" and {settings.dead_letter_topic}" if dead_letters else "",
        settings.bootstrap_servers,
        settings.output_root,
        settings.query_checkpoint,
        "available-now" if settings.available_now else f"trigger {settings.trigger}",
    )
    try:
        _wait(query)
        ended = query.exception() is None and not query.isActive
        if not STOP.is_set() and not settings.available_now and ended:
            raise UserError(f"query {query.name} stopped unexpectedly")
    finally:
        if STOP.is_set():
            log.info("stopping the query (a batch in flight is replayed on the next start)")
        if query.isActive:
            query.stop()
        writer.close()
    exc = query.exception()
    if exc is not None:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"streaming query {query.name} failed: {first}")
    return writer.totals


def _wait(query: StreamingQuery) -> None:
    """Until the query ends or STOP is set."""
    next_log = time.monotonic() + 60
    while not STOP.is_set() and query.isActive:
        try:
            query.awaitTermination(1)
        except StreamingQueryException:
            return  # reported by run from query.exception(), in one line
        if time.monotonic() >= next_log:
            _log_rate(query)
            next_log += 60


def _log_rate(query: StreamingQuery) -> None:
    p = query.lastProgress
    if p:
        log.info(
            "batch %s, %.0f rows/s in, batch took %.1f s",
            p.get("batchId"),
            p.get("processedRowsPerSecond") or 0.0,
            (p.get("durationMs", {}).get("triggerExecution") or 0) / 1000,
        )


STOP = threading.Event()


def _stop(_signo: int, _frame: object) -> None:
    # Only a flag: an exception raised inside a py4j call would cut the gateway mid-command,
    # and the JVM would then die mid-batch with pages of errors and exit code 1.
    STOP.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cityfleet-stream", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = time.monotonic()
    try:
        env = load_env()
        settings = StreamSettings.from_args(args, env)
        totals = run(settings, env)
    except UserError as exc:
        print(f"cityfleet-stream: {exc}", file=sys.stderr)
        return exc.exit_code
    for topic, counts in totals.items():
        print(
            f"{topic}: {counts.get('received', 0)} received, {counts.get('silver', 0)} valid, "
            f"{counts.get('quarantined', 0)} quarantined"
        )
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
