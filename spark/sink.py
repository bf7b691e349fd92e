"""The exactly-once batch writer behind the streaming job's ``foreachBatch``.

Each micro-batch arrives as the union of two branches of the same Kafka records: ``raw``
(every record, parsed and validated) and ``dedup`` (valid records after Spark's stateful
``dropDuplicatesWithinWatermark``). From them the writer derives bronze, quarantine, late and
silver, and writes each into its table under a ``batch_id=<n>`` partition with *dynamic
partition overwrite*. Spark replays an uncommitted batch with the same id, the same offsets
and the same dedup state, so a replay after ``kill -9`` replaces that batch's partitions
instead of adding to them: no row is lost and none is doubled. See spark/README.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contract import Stream
from spark import transforms
from spark.schema import EVENT_TIME

log = logging.getLogger(__name__)
BRANCH = "_branch"


def batch_watermark_ms(spark: SparkSession, checkpoint: str, batch_id: int) -> int:
    """``batchWatermarkMs`` of this batch, from the query's offset log (written before it ran).

    Spark drops a row as late in the dedup operator when its event time is at or before the
    watermark of this batch or the previous one; both are at most this value, so calling
    every row at or before it late keeps every row Spark dropped.
    """
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/offsets/{batch_id}")
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        reader.readLine()  # the log format version, "v1"
        metadata = json.loads(reader.readLine())
    finally:
        stream.close()
    return int(metadata.get("batchWatermarkMs", 0))


@dataclass(frozen=True)
class Tables:
    """Where one stream's tables live: ``<root>/<layer>/<topic>/``."""

    root: str
    topic: str

    def path(self, layer: str) -> str:
        return f"{self.root.rstrip('/')}/{layer}/{self.topic}"


def write_idempotent(df: DataFrame, path: str, partition_by: list[str]) -> None:
    """Replace exactly the partitions ``df`` has; every partition path includes batch_id."""
    (
        df.write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy(*partition_by)
        .parquet(path)
    )


@dataclass
class BatchWriter:
    """``foreachBatch`` callable for one stream; keeps the last batch's counts for logging."""

    stream: Stream
    tables: Tables
    checkpoint: str
    last: dict[str, Any] | None = None
    totals: dict[str, int] = field(default_factory=dict)

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        spark = batch.sparkSession
        watermark = batch_watermark_ms(spark, self.checkpoint, batch_id)
        batch = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = self._counts(batch, watermark)
            raw = batch.where(F.col(BRANCH) == "raw").drop(BRANCH)
            dedup = batch.where(F.col(BRANCH) == "dedup").drop(BRANCH)
            if counts["received"]:
                write_idempotent(
                    transforms.bronze(raw, batch_id),
                    self.tables.path("bronze"),
                    ["ingest_date", "batch_id"],
                )
            if counts["quarantined"]:
                write_idempotent(
                    transforms.quarantine(raw, batch_id),
                    self.tables.path("quarantine"),
                    ["batch_id"],
                )
            if counts["late"]:
                write_idempotent(
                    transforms.late(raw, self.stream, watermark, batch_id),
                    self.tables.path("late"),
                    ["batch_id"],
                )
            if counts["silver"]:
                write_idempotent(
                    transforms.silver(dedup, self.stream, watermark, batch_id),
                    self.tables.path("silver"),
                    ["event_date", "event_hour", "batch_id"],
                )
        finally:
            batch.unpersist()
        self.last = {"batch_id": batch_id, "watermark_ms": watermark, **counts}
        for name, n in counts.items():
            self.totals[name] = self.totals.get(name, 0) + n
        log.info(
            "%s batch %d: %d received, %d to silver, %d quarantined, %d late (watermark %s)",
            self.tables.topic,
            batch_id,
            counts["received"],
            counts["silver"],
            counts["quarantined"],
            counts["late"],
            watermark,
        )

    def _counts(self, batch: DataFrame, watermark_ms: int) -> dict[str, int]:
        """One pass over the cached batch: how many rows go to each table."""
        wm = F.timestamp_millis(F.lit(watermark_ms))
        raw = F.col(BRANCH) == "raw"
        valid = raw & F.col("error").isNull()
        row = batch.agg(
            F.count(F.when(raw, 1)).alias("received"),
            F.count(F.when(raw & F.col("error").isNotNull(), 1)).alias("quarantined"),
            F.count(F.when(valid & (F.col(EVENT_TIME) <= wm), 1)).alias("late"),
            F.count(F.when((F.col(BRANCH) == "dedup") & (F.col(EVENT_TIME) > wm), 1)).alias(
                "silver"
            ),
        ).first()
        return {k: int(row[k]) for k in ("received", "quarantined", "late", "silver")}
