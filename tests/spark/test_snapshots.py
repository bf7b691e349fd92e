"""``spark.snapshots``: a table's Delta snapshot state is computed ahead of the next write,
and an idempotent write after it still skips what its app id already committed."""

from __future__ import annotations

import pytest

from spark.snapshots import SnapshotWarmer

pytestmark = pytest.mark.slow


def _snapshot(spark, uri: str):
    jvm = spark.sparkContext._jvm
    return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(
        spark._jsparkSession, uri
    ).unsafeVolatileSnapshot()


def _append(spark, uri: str, rows: range, version: int) -> None:
    (
        spark.range(rows.start, rows.stop)
        .write.format("delta")
        .mode("append")
        .option("txnAppId", "warm-test")
        .option("txnVersion", version)
        .save(uri)
    )


def test_the_state_the_next_write_checks_is_computed_ahead(spark, tmp_path) -> None:
    uri = (tmp_path / "table").as_uri()
    _append(spark, uri, range(0, 10), 0)
    assert not _snapshot(spark, uri)._computedStateTriggered()

    warmer = SnapshotWarmer(spark)
    try:
        warmer.warm([uri])
        warmer.wait()
        assert _snapshot(spark, uri)._computedStateTriggered()

        _append(spark, uri, range(0, 10), 0)  # a replay: skipped
        _append(spark, uri, range(10, 20), 1)
    finally:
        warmer.close()
    assert spark.read.format("delta").load(uri).count() == 20


def test_a_table_that_cannot_be_read_is_left_to_the_write(spark, tmp_path) -> None:
    warmer = SnapshotWarmer(spark)
    try:
        warmer.warm([(tmp_path / "no-such-table").as_uri(), "not a uri \0"])
        warmer.wait()  # no exception: only an optimisation
    finally:
        warmer.close()
