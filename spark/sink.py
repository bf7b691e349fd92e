"""The exactly-once batch writer behind the streaming job's ``foreachBatch``.

Each micro-batch arrives as the union of two branches of the same Kafka records: ``raw``
(every record, parsed and validated) and ``dedup`` (valid records after Spark's stateful
``dropDuplicatesWithinWatermark``). From them the writer derives bronze, quarantine, late and
silver, and writes all four in one Spark job into ``batch_id=<n>`` folders with batch-named
files (``spark.batchfiles``). Spark replays an uncommitted batch with the same id, the same
offsets and the same dedup state, so a replay after ``kill -9`` replaces that batch's files
instead of adding to them: no row is lost and none is doubled. See spark/README.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from contract import Stream
from spark import transforms
from spark.batchfiles import Store, Target, write_batch

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
        raw, dedup = F.col(BRANCH) == "raw", F.col(BRANCH) == "dedup"
        projections = [
            (raw, transforms.bronze(batch_id)),
            (raw, transforms.quarantine(batch_id)),
            (raw, transforms.late(self.stream, watermark, batch_id)),
            (dedup, transforms.silver(self.stream, watermark, batch_id)),
        ]
        # One struct column per table, null where a row is not in it: every table of the batch
        # comes out of one Spark job, so the batch is computed (and its dedup state updated)
        # once, with no cache and no counting job.
        frame = batch.select(
            *(
                F.when(branch & p.rows, F.struct(*p.columns)).alias(p.layer)
                for branch, p in projections
            )
        )
        targets = tuple(
            Target(p.layer, f"{p.layer}/{self.tables.topic}", p.partition_by)
            for _, p in projections
        )
        rows = write_batch(frame, Store.of(spark, self.tables.root), targets)
        counts = {
            "received": rows["bronze"],
            "silver": rows["silver"],
            "quarantined": rows["quarantine"],
            "late": rows["late"],
        }
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
