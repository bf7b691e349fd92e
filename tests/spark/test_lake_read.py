"""The read side of the Delta lake against the real S3 server: delta-rs and Spark agree,
``spark.maintain`` removes duplicates and compacts without losing a row, and
``python -m spark.sql`` shows history and time travel over a catalog that persists."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import pytest

from contract import VEHICLE
from spark import audit, lake, maintain
from spark.lake import Lake
from spark.reader import LakeReader
from spark.schema import silver_schema
from tests.spark.helpers import series, unique

pytestmark = pytest.mark.slow


def silver_rows(messages: list[dict], offset: int = 0) -> list[tuple]:
    """Silver rows of ``messages``: contract fields, Kafka lineage, event date."""
    schema = silver_schema(VEHICLE)
    rows = []
    for i, m in enumerate(messages):
        at = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        values = dict(
            m,
            timestamp=at,
            kafka_partition=0,
            kafka_offset=offset + i,
            kafka_timestamp=at,
            event_date=at.date(),
        )
        rows.append(tuple(values.get(name) for name in schema.names))
    return rows


@pytest.fixture
def lake_root(stack_env) -> str:
    return f"s3a://{stack_env['S3_BUCKET']}/{unique('read')}/"


def append(spark, uri: str, rows: list[tuple]) -> None:
    df = spark.createDataFrame(rows, silver_schema(VEHICLE))
    df.write.format("delta").mode("append").partitionBy("event_date").save(uri)


def keyed(rows) -> list[tuple]:
    return sorted(
        (r["device_id"], r["seq"], r["id"], r["speed_kmh"], r["kafka_offset"]) for r in rows
    )


def test_delta_rs_and_spark_read_the_same_silver_rows(spark, stack_env, lake_root) -> None:
    uri = Lake(lake_root).uri(lake.silver(VEHICLE))
    append(spark, uri, silver_rows(series("r1", range(1, 41))))
    append(spark, uri, silver_rows(series("r2", range(1, 26)), offset=100))
    append(spark, uri, silver_rows(series("r1", range(41, 61)), offset=200))
    spark.sql(f"DELETE FROM delta.`{uri}` WHERE device_id = 'r2' AND seq > 20")  # a rewrite

    reader = LakeReader.from_env(stack_env, lake_root)
    columns = ["device_id", "seq", "id", "speed_kmh", "kafka_offset", "timestamp", "event_date"]
    by_rs = reader.read(lake.silver(VEHICLE), columns)
    by_spark = spark.read.format("delta").load(uri)
    assert by_rs.num_rows == by_spark.count() == 40 + 20 + 20
    assert keyed(by_rs.to_pylist()) == keyed(r.asDict() for r in by_spark.collect())
    # Timestamps are the same instants (microseconds since the epoch) on both sides.
    micros_rs = sorted(t.timestamp() for t in by_rs.column("timestamp").to_pylist())
    micros_spark = sorted(
        r[0] / 1e6 for r in by_spark.selectExpr("unix_micros(timestamp)").collect()
    )
    assert micros_rs == micros_spark
    assert reader.rows(lake.silver(VEHICLE)) == 80  # from the log's statistics alone


def test_maintain_removes_duplicates_and_keeps_every_row_and_version(
    spark, stack_env, lake_root
) -> None:
    uri = Lake(lake_root).uri(lake.silver(VEHICLE))
    append(spark, uri, silver_rows(series("m1", range(1, 11))))
    # A checkpoint reset replaying offsets already in silver: seqs 4-6 again, later copies.
    append(spark, uri, silver_rows(series("m1", range(4, 7)), offset=50))
    reader = LakeReader.from_env(stack_env, lake_root)
    before = audit.run(reader)
    assert before.silver_duplicates == 3 and not before.ok

    (outcome,) = maintain.run(spark, reader, dedupe_silver=True, retain_hours=168)
    assert outcome.duplicates_removed == 3 and outcome.table == "smartcity.vehicle_data"

    after = audit.run(LakeReader.from_env(stack_env, lake_root))
    assert after.ok and after.rows[0].received == 10 and after.rows[0].silver_rows == 10
    kept = spark.read.format("delta").load(uri).where("seq BETWEEN 4 AND 6")
    assert sorted(r.kafka_offset for r in kept.collect()) == [3, 4, 5]  # the first copies
    history = spark.sql(f"DESCRIBE HISTORY delta.`{uri}`").collect()
    ops = [r.operation for r in history if not r.operation.startswith("VACUUM")]
    assert ops == ["OPTIMIZE", "WRITE", "WRITE", "WRITE"]  # newest first: dedupe is one WRITE
    old = spark.read.format("delta").option("versionAsOf", 1).load(uri)
    assert old.count() == 13  # time travel still sees the duplicates before maintenance


def run_sql(env: dict[str, str], *queries: str, root: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spark.sql", "--output-root", root, *queries],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a JVM and a new Derby metastore, on a busy two-core machine
        check=False,
    )


def shown(stdout: str) -> list[list[dict[str, str]]]:
    """The tables ``DataFrame.show()`` printed, as rows of column → text."""
    tables: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith("+-"):
            continue
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            tables.append([])
        else:
            tables[-1].append(dict(zip(header, cells, strict=False)))
    return tables


def test_sql_shows_history_time_travel_and_a_catalog_that_persists(
    spark, stack_env, lake_root, tmp_path
) -> None:
    uri = Lake(lake_root).uri(lake.silver(VEHICLE))
    for batch in range(3):  # one commit per micro-batch
        seqs = range(batch * 10 + 1, batch * 10 + 11)
        append(spark, uri, silver_rows(series("h1", seqs), offset=batch * 10))
    env = {
        **os.environ,
        **stack_env,
        "CITYFLEET_STATE_DIR": str(tmp_path),  # a metastore of this test's own
        "SPARK_UI_ENABLED": "false",
    }
    first = run_sql(
        env,
        "DESCRIBE HISTORY smartcity.vehicle_data",
        "SELECT count(*) AS n FROM smartcity.vehicle_data VERSION AS OF 1",
        "CREATE TABLE smartcity.h1_head USING delta "
        f"LOCATION '{lake_root}h1_head' AS SELECT * FROM smartcity.vehicle_data WHERE seq <= 5",
        root=lake_root,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    history, travel = shown(first.stdout)[:2]
    assert [(r["version"], r["operation"]) for r in history] == [
        ("2", "WRITE"),
        ("1", "WRITE"),
        ("0", "WRITE"),
    ]
    assert travel == [{"n": "20"}]
    # A second session: the table the first one made is still in the catalog; then a version
    # the table never had is one line and exit code 2 (one JVM for both: each costs ~35 s).
    second = run_sql(
        env,
        "SELECT count(*) AS n FROM smartcity.h1_head",
        "SELECT * FROM smartcity.vehicle_data VERSION AS OF 99",
        root=lake_root,
    )
    assert shown(second.stdout) == [[{"n": "5"}]], second.stderr[-2000:]
    assert second.returncode == 2 and "Traceback" not in second.stderr
    (error,) = [ln for ln in second.stderr.splitlines() if ln.startswith("spark.sql:")]
    assert "99" in error, second.stderr


def test_reports_write_gold_delta_tables_with_the_audit_cores_verdict(
    spark, stack_env, lake_root, tmp_path
) -> None:
    from contract.manifest import Manifest
    from spark import report

    uri = Lake(lake_root).uri(lake.silver(VEHICLE))
    append(spark, uri, silver_rows(series("g1", range(1, 11))))
    reader = LakeReader.from_env(stack_env, lake_root)
    manifest = Manifest.from_counters({"g1": {"vehicle": {"published": 12, "last_seq": 12}}}, {})
    for _ in range(2):  # each run is a new version of the gold tables
        results, html = report.run(spark, reader, ["journeys", "audit"], manifest, tmp_path)
    verdict = audit.run(reader, manifest).verdict()
    assert verdict.startswith("audit: MISSING 2 of 12 messages: vehicle/g1 2 (at the end)")
    assert report.audit.verdict(results["audit"]) == verdict  # the report's is the core's
    assert html.is_file() and "MISSING 2 of 12" in html.read_text()
    gold = reader.read(lake.gold("audit"), ["stream", "device_id", "received", "missing"])
    assert gold.to_pylist() == [
        {"stream": "vehicle", "device_id": "g1", "received": 10, "missing": 2}
    ]
    assert reader.table(lake.gold("journeys")).version() == 1
    assert [r["trip_id"] for r in results["journeys"]] == ["g1-trip"]
