"""The ``smartcity`` database: the lake's tables registered in Spark's catalog.

Spark's default catalog lives in the session, so every job that queries by name (reports,
``python -m spark.sql``) registers the tables first; ``CREATE ... IF NOT EXISTS`` and
``RECOVER PARTITIONS`` make that cheap and repeatable. With a Hive metastore or AWS Glue
configured (see spark/README.md) the same statements register the tables there once.
"""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from contract import ALL_STREAMS, Stream
from spark.schema import PARTITION_COLUMNS, ddl, silver_schema

log = logging.getLogger(__name__)
DATABASE = "smartcity"


def path_exists(spark: SparkSession, path: str) -> bool:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    return bool(fs.exists(hpath))


def make_dirs(spark: SparkSession, path: str) -> None:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).mkdirs(hpath)  # type: ignore[attr-defined]


def table_name(stream: Stream) -> str:
    return f"{DATABASE}.{stream.kafka_topic}"


def register_silver(
    spark: SparkSession, root: str, streams: tuple[Stream, ...] = ALL_STREAMS
) -> list[str]:
    """Create ``smartcity.<topic>`` over ``<root>/silver/<topic>/``; return the tables made."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    made = []
    for stream in streams:
        location = f"{root.rstrip('/')}/silver/{stream.kafka_topic}"
        name = table_name(stream)
        make_dirs(spark, location)  # an empty table is fine; a missing folder is an error
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {name} ({ddl(silver_schema(stream))}) USING parquet "
            f"PARTITIONED BY ({', '.join(PARTITION_COLUMNS)}) LOCATION '{location}'"
        )
        spark.sql(f"ALTER TABLE {name} RECOVER PARTITIONS")
        made.append(name)
    return made


def register_gold(spark: SparkSession, root: str, name: str) -> str:
    """``smartcity.gold_<name>`` over ``<root>/gold/<name>/`` (rewritten whole by each run)."""
    table = f"{DATABASE}.gold_{name}"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    spark.sql(f"DROP TABLE IF EXISTS {table}")
    spark.sql(f"CREATE TABLE {table} USING parquet LOCATION '{root.rstrip('/')}/gold/{name}'")
    return table


def persistent(spark: SparkSession) -> bool:
    """Whether tables registered now outlive this session (a Hive metastore or AWS Glue)."""
    return spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "hive"


def register_lake(spark: SparkSession, root: str) -> list[str]:
    """Silver for every stream plus each gold table a report has written."""
    made = register_silver(spark, root)
    gold = f"{root.rstrip('/')}/gold"
    if path_exists(spark, gold):
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        hpath = jvm.org.apache.hadoop.fs.Path(gold)
        fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
        for status in fs.listStatus(hpath):
            if status.isDirectory():
                made.append(register_gold(spark, root, status.getPath().getName()))
    return made
