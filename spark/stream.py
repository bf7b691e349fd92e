"""``python -m spark.stream``: Kafka → bronze, silver, quarantine and late Parquet, exactly once.

One streaming query per stream topic, each with its own checkpoint folder. Every query reads
its topic once and splits it in two branches: every record (for bronze, quarantine and the
late side output) and the valid records through ``dropDuplicatesWithinWatermark`` on
(device_id, seq) (for silver). ``spark.sink.BatchWriter`` writes a micro-batch idempotently.
Runs the same under ``spark-submit spark/stream.py`` on a cluster.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from contract import Stream
from spark import transforms
from spark.schema import EVENT_TIME, LINEAGE, dedup_keys
from spark.settings import StreamSettings, add_arguments
from spark.sink import BRANCH, BatchWriter, Tables
from stack.env import load_env
from stack.errors import StackError

log = logging.getLogger("spark.stream")


def streaming_frame(spark: SparkSession, settings: StreamSettings, stream: Stream) -> Any:
    """The query's input: raw branch ∪ dedup branch of one Kafka topic."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", settings.topic(stream))
        .option("startingOffsets", settings.starting_offsets)
        .option("includeHeaders", "true")
    )
    if settings.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", settings.max_offsets_per_trigger)
    parsed = transforms.parse(reader.load(), stream)
    # Only what silver keeps goes through the dedup's shuffle: not the payload bytes again.
    deduped = (
        parsed.where(F.col("error").isNull())
        .select(*(f.name for f in stream.fields), *LINEAGE.fieldNames())
        .withWatermark(EVENT_TIME, settings.watermark)
        .dropDuplicatesWithinWatermark(dedup_keys(stream))
    )
    return parsed.withColumn(BRANCH, F.lit("raw")).unionByName(
        deduped.withColumn(BRANCH, F.lit("dedup")), allowMissingColumns=True
    )


def start_query(
    spark: SparkSession, settings: StreamSettings, stream: Stream
) -> tuple[StreamingQuery, BatchWriter]:
    checkpoint = settings.stream_checkpoint(stream)
    writer = BatchWriter(stream, Tables(settings.output_root, stream.kafka_topic), checkpoint)
    builder = (
        streaming_frame(spark, settings, stream)
        .writeStream.queryName(f"cityfleet_{stream.kafka_topic}")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(writer)
    )
    if settings.available_now:
        builder = builder.trigger(availableNow=True)
    else:
        builder = builder.trigger(processingTime=settings.trigger)
    return builder.start(), writer


def preflight(settings: StreamSettings, env: Mapping[str, str]) -> None:
    """Fail fast, in one line, when Kafka or S3 is down or a topic is missing."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    try:
        topics = admin.list_topics(timeout=10).topics
    except KafkaException:
        raise StackError(
            f"Kafka at {settings.bootstrap_servers} is not answering: start the stack with "
            "`make up` (or `python -m stack up`)"
        ) from None
    missing = [settings.topic(s) for s in settings.streams if settings.topic(s) not in topics]
    if missing:
        raise StackError(
            f"Kafka topic(s) {', '.join(missing)} do not exist: `make up` creates the stream "
            "topics; check --streams/--topic-prefix",
            exit_code=2,
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
            region_name=env.get("AWS_REGION", "us-east-1"),
        )
        try:
            s3.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StackError(
                f"S3 bucket {bucket!r} at {env['S3_ENDPOINT_URL']} is not reachable ({exc}): "
                "start the stack with `make up`"
            ) from None


def session(settings: StreamSettings, env: Mapping[str, str], app: str) -> SparkSession:
    from spark.session import build_session

    return build_session(
        app,
        dict(env),
        master=settings.master,
        extra_conf={
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        },
    )


def run(settings: StreamSettings, env: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """Start one query per stream; return per-topic totals when they end (available-now)."""
    preflight(settings, env)
    spark = session(settings, env, "cityfleet-stream")
    started = [start_query(spark, settings, s) for s in settings.streams]
    log.info(
        "streaming %s from %s into %s (checkpoints %s, %s)",
        ", ".join(settings.topic(s) for s in settings.streams),
        settings.bootstrap_servers,
        settings.output_root,
        settings.checkpoint,
        "available-now" if settings.available_now else f"trigger {settings.trigger}",
    )
    try:
        _wait(started, settings.available_now)
        if not STOP.is_set() and not settings.available_now:
            for query, _ in started:
                if query.exception() is None and not query.isActive:
                    raise StackError(f"query {query.name} stopped unexpectedly")
    finally:
        if STOP.is_set():
            log.info("stopping the queries (a batch in flight is replayed on the next start)")
        for query, _ in started:
            if query.isActive:
                query.stop()
    for query, _ in started:
        exc = query.exception()
        if exc is not None:
            first = str(exc).strip().splitlines()[0]
            raise StackError(f"streaming query {query.name} failed: {first}")
    return {w.tables.topic: dict(w.totals) for _, w in started}


def _wait(started: list[tuple[StreamingQuery, BatchWriter]], available_now: bool) -> None:
    """Until every query ends (available-now), any one ends (continuous), or STOP is set."""
    next_log = time.monotonic() + 60
    while not STOP.is_set():
        active = [q for q, _ in started if q.isActive]
        if not active or (not available_now and len(active) < len(started)):
            return
        try:
            active[0].awaitTermination(1)
        except StreamingQueryException:
            return  # reported below from query.exception(), in one line
        if time.monotonic() >= next_log:
            _log_rates(started)
            next_log += 60


def _log_rates(started: list[tuple[StreamingQuery, BatchWriter]]) -> None:
    for query, _ in started:
        p = query.lastProgress
        if p:
            log.info(
                "%s: batch %s, %.0f rows/s in, batch took %.1f s",
                query.name,
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
    except StackError as exc:
        print(f"cityfleet-stream: {exc}", file=sys.stderr)
        return exc.exit_code
    for topic, counts in totals.items():
        print(
            f"{topic}: {counts.get('received', 0)} received, {counts.get('silver', 0)} to silver, "
            f"{counts.get('quarantined', 0)} quarantined, {counts.get('late', 0)} late"
        )
    print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
