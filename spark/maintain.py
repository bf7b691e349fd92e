"""``python -m spark.maintain``: compact the lake's Delta tables, drop old files, remove duplicates.

For every Delta table of the lake (bronze, silver, quarantine, late, dead letters, gold):

1. with ``--dedupe``, silver tables first: any ``(device_id, seq)`` held more than once (only a
   checkpoint reset replaying offsets already in silver can cause that; the audit reports it)
   keeps its earliest Kafka copy. One commit per table replaces exactly those keys' rows
   (``replaceWhere`` on the keys and their event dates), so a reader sees either before or
   after, never a key missing;
2. ``OPTIMIZE``: the many small files of a streaming table's micro-batches become a few large
   ones (a new version; the data is unchanged);
3. ``VACUUM ... RETAIN <hours> HOURS`` (default 168, Delta's own minimum): deletes files no
   version younger than that needs. Time travel reaches back that far, not further.

Safe while the streaming job runs: each step is one optimistic Delta transaction; one that
conflicts with a concurrent commit fails and changes nothing (run it again). Tables are named
by path, so the catalog's metastore is not needed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cityconf.env import load_env
from cityconf.errors import UserError
from contract import DATA_STREAMS
from spark import lake
from spark.catalog import lake_tables
from spark.lake import default_root
from spark.reader import LakeReader
from spark.report import NAMES as GOLD_REPORTS

log = logging.getLogger("spark.maintain")
MIN_RETAIN_HOURS = 168
"""Delta's ``deletedFileRetentionDuration`` default; below it VACUUM may delete files a reader
or time travel within the last week still needs (Delta itself refuses)."""
KEYS_PER_COMMIT = 500
"""Duplicate keys replaced per commit: the predicate lists each key literally."""
FIRST_COPY = ("kafka_timestamp", "kafka_partition", "kafka_offset")


@dataclass
class Outcome:
    table: str
    duplicates_removed: int = 0
    files_compacted: int = 0


def delta_path(uri: str) -> str:
    return f"delta.`{uri}`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dedupe(spark: SparkSession, uri: str) -> int:
    """Keep one row per ``(device_id, seq)`` (its earliest Kafka copy); return rows removed."""
    table = spark.read.format("delta").load(uri)
    doubled = (
        table.groupBy("device_id", "seq")
        .agg(F.count("*").alias("n"), F.collect_set("event_date").alias("dates"))
        .where("n > 1")
        .collect()
    )
    removed = 0
    for start in range(0, len(doubled), KEYS_PER_COMMIT):
        chunk = doubled[start : start + KEYS_PER_COMMIT]
        # Struct literals typed exactly as the columns: IN does not widen a struct's fields.
        keys = ", ".join(
            f"named_struct('d', {_literal(r.device_id)}, 's', CAST({int(r.seq)} AS BIGINT))"
            for r in chunk
        )
        dates = sorted({d for r in chunk for d in r.dates})
        where = (
            f"event_date IN ({', '.join(f'DATE {_literal(str(d))}' for d in dates)}) "
            f"AND named_struct('d', device_id, 's', CAST(seq AS BIGINT)) IN ({keys})"
        )
        keep = _first_copies(table.where(where))
        # Collected first: the replacement rows must not be re-read from the table being
        # replaced; they are few (the duplicates of at most KEYS_PER_COMMIT keys).
        rows = spark.createDataFrame(keep.collect(), keep.schema)
        (rows.write.format("delta").mode("overwrite").option("replaceWhere", where).save(uri))
        removed += sum(r.n for r in chunk) - len(chunk)
    return removed


def _first_copies(rows: DataFrame) -> DataFrame:
    order = [F.col(c).asc_nulls_last() for c in FIRST_COPY if c in rows.columns]
    w = Window.partitionBy("device_id", "seq").orderBy(*(order or [F.lit(0)]))
    return rows.withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")


def compact(spark: SparkSession, uri: str) -> int:
    (row,) = spark.sql(f"OPTIMIZE {delta_path(uri)}").collect()
    return int(row.metrics.numFilesRemoved or 0)


def vacuum(spark: SparkSession, uri: str, hours: int) -> None:
    # One pass: a DRY RUN first to count the files would list the whole table twice.
    spark.sql(f"VACUUM {delta_path(uri)} RETAIN {hours} HOURS").collect()


def run(
    spark: SparkSession, reader: LakeReader, dedupe_silver: bool, retain_hours: int
) -> list[Outcome]:
    silver = {lake.silver(s).path for s in DATA_STREAMS}
    done = []
    for table in lake_tables(GOLD_REPORTS):
        if reader.table(table) is None:
            continue
        uri = reader.lake.uri(table)
        outcome = Outcome(table.name)
        if dedupe_silver and table.path in silver:
            outcome.duplicates_removed = dedupe(spark, uri)
        outcome.files_compacted = compact(spark, uri)
        vacuum(spark, uri, retain_hours)
        log.info("%s", outcome)
        done.append(outcome)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark.maintain", description=__doc__)
    parser.add_argument("--output-root", help="lake root (default s3a://$S3_BUCKET/)")
    parser.add_argument(
        "--dedupe",
        action="store_true",
        help="first remove duplicate (device_id, seq) rows from silver (the audit names them)",
    )
    parser.add_argument(
        "--retain-hours",
        type=int,
        default=MIN_RETAIN_HOURS,
        help=f"VACUUM keeps files younger than this (default and minimum {MIN_RETAIN_HOURS})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.retain_hours < MIN_RETAIN_HOURS:
            raise UserError(
                f"--retain-hours {args.retain_hours}: below {MIN_RETAIN_HOURS} VACUUM may delete "
                f"files that time travel and running readers still need; use {MIN_RETAIN_HOURS} "
                "or more",
                exit_code=2,
            )
        env = load_env()
        reader = LakeReader.from_env(env, default_root(env, args.output_root))
        from spark.session import build_session

        spark = build_session("cityfleet-maintain", env)
        outcomes = run(spark, reader, args.dedupe, args.retain_hours)
    except UserError as exc:
        print(f"spark.maintain: {exc}", file=sys.stderr)
        return exc.exit_code
    for o in outcomes:
        print(
            f"{o.table}: {o.duplicates_removed:,} duplicate rows removed, "
            f"{o.files_compacted:,} files compacted into larger ones, files older than "
            f"{args.retain_hours} h that no version needs deleted"
        )
    if not outcomes:
        print(f"spark.maintain: no Delta tables under {reader.lake.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
