"""The ``smartcity`` database: the lake's Delta tables in a catalog that outlives the session.

Spark's default catalog lives in the session, so its tables die with it. The pyspark wheel
ships Spark's Hive support (``spark-hive``, the Hive 2.3 metastore client) and Derby, so a
local Hive metastore needs nothing more than settings: an embedded Derby database in the state
folder (``$CITYFLEET_STATE_DIR/metastore/``), one Spark process at a time (Derby's embedded mode
locks the database; a second one gets :data:`METASTORE_BUSY`). No server to run, and a
cluster points the same settings at a shared metastore or AWS Glue instead (spark/README.md).

The tables are external: the metastore holds only name → location; each Delta table keeps its
schema, history and versions in its own ``_delta_log``, so ``DESCRIBE HISTORY`` and
``VERSION AS OF`` work on the names. Only the commands that query by name
(``python -m spark.sql``, ``python -m spark.maintain``) open the metastore and register what is
missing; the streaming job and the reports write by path and never hold the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from cityconf.layout import Layout
from contract import ALL_STREAMS
from spark import lake
from spark.reader import LakeReader
from spark.session import JVM_OPTIONS

log = logging.getLogger(__name__)
METASTORE_BUSY = "Another instance of Derby may have already booted the database"


def metastore_dir(env: Mapping[str, str]) -> Path:
    return Layout.from_env(env).metastore


def catalog_conf(env: Mapping[str, str]) -> dict[str, str]:
    """Spark settings for the persistent local catalog (pass as ``build_session``'s extra_conf)."""
    home = metastore_dir(env)
    home.mkdir(parents=True, exist_ok=True)
    return {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
        ),
        # Derby's log and system home in the state folder, not the working directory (this
        # replaces the session's Java options, so it repeats them).
        "spark.driver.extraJavaOptions": (
            f"{JVM_OPTIONS} -Dderby.system.home={home} "
            f"-Dderby.stream.error.file={home / 'derby.log'}"
        ),
    }


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether a file or folder exists, through the session's Hadoop file systems (s3a too)."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    return bool(fs.exists(hpath))


def lake_tables(gold_reports: Iterable[str] = ()) -> list[lake.Table]:
    """Every table the catalog names: the streaming job's and the reports' gold tables."""
    return [*lake.stream_tables(ALL_STREAMS), *(lake.gold(name) for name in gold_reports)]


def registered(spark: SparkSession) -> dict[str, str]:
    """``smartcity.<table>`` → the location the metastore holds for it."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {lake.DATABASE}")
    found: dict[str, str] = {}
    for row in spark.sql(f"SHOW TABLE EXTENDED IN {lake.DATABASE} LIKE '*'").collect():
        for line in row["information"].splitlines():
            if line.startswith("Location:"):
                found[f"{lake.DATABASE}.{row['tableName']}"] = line.split(":", 1)[1].strip()
    return found


def register(
    spark: SparkSession, reader: LakeReader, gold_reports: Iterable[str] = ()
) -> list[str]:
    """Register each existing Delta table of the lake under its name; return the names made.

    A table already registered at the same location is left alone, so this is cheap after the
    first time; one registered elsewhere (another ``--output-root``) is pointed here. A table
    no commit has created yet is skipped: it appears once the streaming job writes it.
    """
    have = registered(spark)
    made = []
    for table in lake_tables(gold_reports):
        location = reader.lake.uri(table)
        if have.get(table.name, "").rstrip("/") == location.rstrip("/"):
            continue
        if reader.table(table) is None:
            continue
        if table.name in have:
            # External: dropping the name leaves the table's files and log untouched.
            spark.sql(f"DROP TABLE {table.name}")
        spark.sql(f"CREATE TABLE {table.name} USING delta LOCATION '{location}'")
        made.append(table.name)
    if made:
        log.info("registered %s", ", ".join(made))
    return made
