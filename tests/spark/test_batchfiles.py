"""The batch-file writer on the real S3 server: a replayed batch replaces, never adds."""

from __future__ import annotations

from pyspark.sql import functions as F

from spark.batchfiles import Store, Target, write_batch
from tests.spark.helpers import unique


def test_a_replay_with_other_tasks_replaces_the_killed_attempts_files(spark, stack_env) -> None:
    root = f"s3a://{stack_env['S3_BUCKET']}/{unique('batchfiles')}/"
    targets = (Target("t", "t/x", ("day", "batch_id")),)
    rows = spark.range(100).select(
        F.struct(
            F.col("id"),
            (F.col("id") % 2).alias("day"),
            F.lit(7).cast("long").alias("batch_id"),
        ).alias("t")
    )
    store = Store.of(spark, root)
    # A "killed attempt" with 4 tasks, then the replay with 2: the attempt's files that the
    # replay does not overwrite by name must go.
    assert write_batch(rows.repartition(4), store, targets) == {"t": 100}
    assert write_batch(rows.repartition(2), store, targets) == {"t": 100}

    lake = spark.read.parquet(f"{root}t/x")
    assert lake.count() == 100
    assert lake.select("id").distinct().count() == 100
    assert {(r.day, r.batch_id) for r in lake.select("day", "batch_id").distinct().collect()} == {
        (0, 7),
        (1, 7),
    }
    files = {f.rsplit("/", 1)[1] for f in lake.inputFiles()}
    assert files == {"part-00000.parquet", "part-00001.parquet"}
