"""The exactly-once batch writer behind the streaming job's ``foreachBatch``.

One micro-batch holds the Kafka records of every stream topic (and the dead letters). The
writer parses and judges them once (``spark.transforms``, ``spark.validation``), persists that,
runs one small aggregate job (per stream and device: rows, distinct seqs, lowest and highest
seq, newest event time), then writes each Delta table that has rows, with Delta's idempotent
writes: every write carries ``txnAppId`` (the query's id, from its checkpoint) and
``txnVersion`` (the batch id), so a replay after ``kill -9`` skips the tables the killed attempt
committed and writes the others.

Which rows are appended and which go through the insert-only ``MERGE`` on
``(device_id, seq)`` (restricted to the event dates they touch, made idempotent by the session
confs ``spark.databricks.delta.write.txnAppId``/``txnVersion`` under a second app id) is the
seq index's call (``spark.seqindex``). No watermark decides anything: a row however late lands
in silver once, and ``late`` records how late it was. See spark/README.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contract import Stream
from spark import lake, transforms, validation
from spark.lake import Lake, Table
from spark.schema import BRONZE_PARTITIONS, PARTITION_COLUMNS, dedup_keys
from spark.seqindex import SeqIndex
from spark.snapshots import SnapshotWarmer
from spark.summary import Summary, summarize

log = logging.getLogger(__name__)

TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"


class InjectedFault(RuntimeError):
    """Raised by the test seam ``Fault`` between two table writes of a batch."""


@dataclass(frozen=True)
class Fault:
    """Fail batch ``batch_id`` after ``after_writes`` of its table writes (tests only).

    Read from ``CITYFLEET_STREAM_FAULT=<batch_id>:<after_writes>`` (``last``: after every
    write, before Spark commits the batch); with a fault set the writes of a batch run one
    after another, in a fixed order, so "after the k-th" means one thing.
    """

    batch_id: int
    after_writes: int | None

    @classmethod
    def parse(cls, text: str | None) -> Fault | None:
        if not text:
            return None
        batch, after = text.split(":")
        return cls(int(batch), None if after == "last" else int(after))


def query_id(spark: SparkSession, checkpoint: str) -> str:
    """The streaming query's id from ``<checkpoint>/metadata``: a new checkpoint, a new id."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/metadata")
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        return str(json.loads(reader.readLine())["id"])
    finally:
        stream.close()


@dataclass
class Clock:
    """Where a batch's time goes: wall seconds per step, for the log and the benchmark."""

    laps: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self.started, 3)
        self.started = now

    def record(self, name: str, seconds: float) -> None:
        self.laps[name] = round(seconds, 3)

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:.2f} s" for k, v in self.laps.items())


@dataclass(frozen=True)
class Write:
    """One table write of a batch; writes of one table run in order, tables in parallel."""

    table: Table
    what: str
    run: Callable[[], None]


@dataclass
class BatchWriter:
    """``foreachBatch`` callable: every table of a micro-batch, each exactly once."""

    where: Lake
    topics: Mapping[str, Stream]
    """Kafka topic → stream, for the topics this job reads."""
    dead_letter_topic: str | None
    checkpoint: str
    late_after_s: int
    max_skew_s: int
    threads: int = 2
    fault: Fault | None = None
    app_id: str | None = None
    index: SeqIndex | None = None
    last: dict[str, Any] | None = None
    warmer: SnapshotWarmer | None = None
    _parser: transforms.Parser = field(init=False)
    totals: dict[str, dict[str, int]] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    """Each batch's seconds per step (``Clock``), for the benchmark's breakdown."""

    def __post_init__(self) -> None:
        self._parser = transforms.Parser(self.topics, self.max_skew_s)

    @property
    def streams(self) -> tuple[Stream, ...]:
        return tuple(self.topics.values())

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = batch.sparkSession
        clock = Clock()
        if self.app_id is None or self.index is None:
            self.app_id = query_id(spark, self.checkpoint)
            self.index = SeqIndex.load(spark, self.where, self.streams)
            log.info(
                "query %s: seq index of %d devices rebuilt from silver",
                self.app_id,
                self.index.entries(),
            )
            clock.lap("index")
        # One task a core, not one a Kafka partition (30 for five topics of six): every
        # table write scans the persisted batch again, and each task of it costs scheduling
        # and writes a Parquet file of its own per partition value.
        parts = spark.sparkContext.defaultParallelism
        parsed = self._parser(batch.coalesce(parts)).persist()
        try:
            # One job reads Kafka, parses, checks, caches and aggregates; only when the fast
            # check refused records (normally none) does the contract judge them, and the
            # summary is taken again.
            frame = parsed.withColumn(
                "error", F.when(F.col("checked"), F.col("problem")).otherwise(F.lit("unchecked"))
            )
            summary = summarize(frame, self.dead_letter_topic)
            clock.lap("read+parse+check+summary")
            if summary.unchecked:
                frame = validation.judge(parsed)
                summary = summarize(frame, self.dead_letter_topic)
                clock.lap("contract on refused")
            writes, merges = self._plan(spark, batch, frame, summary, batch_id)
            self._run(spark, writes, merges, batch_id, clock)
            self._warm(spark, [*writes, *merges])
        finally:
            parsed.unpersist()
        self.index.advance(summary)
        self._count(summary, batch_id, clock)

    # -- planning -------------------------------------------------------------------------

    def _plan(
        self,
        spark: SparkSession,
        batch: DataFrame,
        frame: DataFrame,
        summary: Summary,
        batch_id: int,
    ) -> tuple[list[Write], list[Write]]:
        assert self.app_id is not None and self.index is not None
        append = lambda df, table, parts=(): self._append(df, table, parts, batch_id)  # noqa: E731
        writes: list[Write] = []
        if sum(summary.received.values()):
            writes.append(
                Write(
                    lake.bronze(),
                    "append",
                    lambda: append(transforms.bronze(frame), lake.bronze(), BRONZE_PARTITIONS),
                )
            )
        if sum(summary.quarantined.values()):
            writes.append(
                Write(
                    lake.quarantine(),
                    "append",
                    lambda: append(transforms.quarantine(frame), lake.quarantine()),
                )
            )
        if summary.dead_letters and self.dead_letter_topic:
            dead = batch.where(F.col("topic") == F.lit(self.dead_letter_topic))
            writes.append(
                Write(
                    lake.dead_letters(),
                    "append",
                    lambda: append(transforms.dead_letters(dead), lake.dead_letters()),
                )
            )
        newest = self.index.newest_with(self.streams, summary)
        late_after = self.late_after_s
        if any(
            (newest[s] - summary.oldest[s.name]).total_seconds() > late_after
            for s in newest
            if s.name in summary.oldest
        ):
            writes.append(
                Write(
                    lake.late(),
                    "append",
                    lambda: append(transforms.late(frame, newest, late_after), lake.late()),
                )
            )
        merges: list[Write] = []
        for stream in self.streams:
            if not summary.valid.get(stream.name):
                continue
            table = lake.silver(stream)
            rows = transforms.silver(frame, stream)
            suspects = self.index.suspects(stream, summary)
            if suspects is None:  # every device: all through the merge
                merges.append(Write(table, "merge", self._merger(spark, rows, stream)))
                continue
            if suspects:
                mine = F.col("device_id").isin(sorted(suspects))
                merges.append(Write(table, "merge", self._merger(spark, rows.where(mine), stream)))
                rows = rows.where(~mine)
            if len(suspects) < len(summary.devices[stream.name]):
                writes.append(
                    Write(
                        table,
                        "append",
                        lambda rows=rows, table=table: append(rows, table, PARTITION_COLUMNS),
                    )
                )
        return writes, merges

    # -- writing --------------------------------------------------------------------------

    def _append(
        self, df: DataFrame, table: Table, partition_by: tuple[str, ...], batch_id: int
    ) -> None:
        writer = (
            df.write.format("delta")
            .mode("append")
            .option("txnAppId", self.app_id)
            .option("txnVersion", batch_id)
        )
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(self.where.uri(table))

    def _merger(self, spark: SparkSession, rows: DataFrame, stream: Stream) -> Callable[[], None]:
        def run() -> None:
            keys = dedup_keys(stream)
            source = rows.dropDuplicates(keys)
            table = lake.silver(stream)
            uri = self.where.uri(table)
            if not self.where.exists(spark, table):
                # The first rows of this table: nothing to merge with (the session confs make
                # this write idempotent under the merge app id too).
                source.write.format("delta").mode("append").partitionBy(*PARTITION_COLUMNS).save(
                    uri
                )
                return
            from delta.tables import DeltaTable

            dates = sorted({r[0] for r in source.select("event_date").distinct().collect()})
            if not dates:
                return
            listed = ", ".join(f"DATE'{d.isoformat()}'" for d in dates)
            on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
            (
                DeltaTable.forPath(spark, uri)
                .alias("t")
                .merge(source.alias("s"), f"{on} AND t.event_date IN ({listed})")
                .whenNotMatchedInsertAll()
                .execute()
            )

        return run

    def _run(
        self,
        spark: SparkSession,
        writes: list[Write],
        merges: list[Write],
        batch_id: int,
        clock: Clock,
    ) -> None:
        """Appends first (tables in parallel), then the merges under the merge app id."""
        done = 0
        fault = self.fault if self.fault is not None and self.fault.batch_id == batch_id else None

        def step(w: Write) -> None:
            nonlocal done
            limit = fault.after_writes if fault is not None else None
            if limit is not None and done >= limit:
                raise InjectedFault(f"batch {batch_id}: fault after {done} writes")
            timed(w)
            done += 1

        def timed(w: Write) -> None:
            started = time.monotonic()
            w.run()
            clock.record(f"{w.table.path} {w.what}", time.monotonic() - started)

        if self.fault is not None or self.threads <= 1:
            for w in writes:
                step(w)
        else:
            by_table: dict[str, list[Write]] = defaultdict(list)
            for w in writes:
                by_table[w.table.path].append(w)
            with ThreadPoolExecutor(self.threads, thread_name_prefix="delta-write") as pool:
                futures = [
                    pool.submit(lambda ws=ws: [timed(x) for x in ws]) for ws in by_table.values()
                ]
                for f in futures:
                    f.result()
        clock.lap("appends")
        if merges:
            spark.conf.set(TXN_APP_ID, f"{self.app_id}-merge")
            spark.conf.set(TXN_VERSION, str(batch_id))
            try:
                for w in merges:
                    step(w)
            finally:
                spark.conf.unset(TXN_APP_ID)
                spark.conf.unset(TXN_VERSION)
            clock.lap("merges")
        if fault is not None and (fault.after_writes is None or done >= fault.after_writes):
            raise InjectedFault(f"batch {batch_id}: fault after all {done} writes")

    # -- after the commit -----------------------------------------------------------------

    def close(self) -> None:
        """Once the query has stopped: end the snapshot threads, after any computation under way."""
        if self.warmer is not None:
            self.warmer.close()
            self.warmer = None

    def _warm(self, spark: SparkSession, written: list[Write]) -> None:
        """The next batch's txn checks on these tables, computed ahead (spark.snapshots)."""
        if self.warmer is None:
            self.warmer = SnapshotWarmer(spark)
        self.warmer.warm(sorted({self.where.uri(w.table) for w in written}))

    def _count(self, summary: Summary, batch_id: int, clock: Clock) -> None:
        for stream in self.streams:
            counts = {
                "received": summary.received.get(stream.name, 0),
                "silver": summary.valid.get(stream.name, 0),
                "quarantined": summary.quarantined.get(stream.name, 0),
            }
            total = self.totals.setdefault(stream.kafka_topic, {})
            for k, n in counts.items():
                total[k] = total.get(k, 0) + n
        self.last = {
            "batch_id": batch_id,
            "received": sum(summary.received.values()),
            "valid": sum(summary.valid.values()),
            "quarantined": sum(summary.quarantined.values()),
            "dead_letters": summary.dead_letters,
            "seconds": clock.laps,
        }
        self.history.append(clock.laps)
        log.info(
            "batch %d: %d received, %d valid, %d quarantined, %d dead letters; %s",
            batch_id,
            self.last["received"],
            self.last["valid"],
            self.last["quarantined"],
            summary.dead_letters,
            clock,
        )
