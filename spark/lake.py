"""The lake's tables: the one place that names them and says where they live.

Every table is a Delta table under one root (``s3a://$S3_BUCKET/`` by default):

* ``bronze/`` (``smartcity.bronze``): every Kafka record of every stream topic as it came,
  partitioned by ``ingest_date``;
* ``silver/<topic>/`` (``smartcity.<topic>``): one typed row per ``(device_id, seq)``, one
  table per stream, partitioned by ``event_date``;
* ``quarantine/`` (``smartcity.quarantine``): records that break the contract, with the reason;
* ``late/`` (``smartcity.late``): a record of the rows that came late and by how much (the rows
  themselves are in silver);
* ``dead_letters/`` (``smartcity.dead_letters``): the bridge's ``dead_letter`` topic, its
  reason headers as columns;
* ``gold/<report>/`` (``smartcity.gold_<report>``): one table per report.

Writers (``spark.stream``) and readers (reports, audit, demo, drill, delta-rs) all take paths
and names from here, so a table moves in one place. ``Lake.uri`` gives the Hadoop (``s3a://``)
form Spark uses; ``Lake.object_uri`` the ``s3://`` form delta-rs and other non-JVM readers use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cityconf.keys import value
from contract import ALL_STREAMS, Stream

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DATABASE = "smartcity"

BRONZE = "bronze"
SILVER = "silver"
QUARANTINE = "quarantine"
LATE = "late"
DEAD_LETTERS = "dead_letters"
GOLD = "gold"


@dataclass(frozen=True)
class Table:
    """One lake table: its path relative to the lake root and its catalog name."""

    path: str
    """Relative to the root, no leading or trailing slash: ``silver/vehicle_data``."""
    name: str
    """Fully qualified catalog name: ``smartcity.vehicle_data``."""


def bronze() -> Table:
    return Table(BRONZE, f"{DATABASE}.{BRONZE}")


def silver(stream: Stream) -> Table:
    return Table(f"{SILVER}/{stream.kafka_topic}", f"{DATABASE}.{stream.kafka_topic}")


def quarantine() -> Table:
    return Table(QUARANTINE, f"{DATABASE}.{QUARANTINE}")


def late() -> Table:
    return Table(LATE, f"{DATABASE}.{LATE}")


def dead_letters() -> Table:
    return Table(DEAD_LETTERS, f"{DATABASE}.{DEAD_LETTERS}")


def gold(report: str) -> Table:
    return Table(f"{GOLD}/{report}", f"{DATABASE}.gold_{report}")


def silver_tables(streams: tuple[Stream, ...] = ALL_STREAMS) -> tuple[Table, ...]:
    return tuple(silver(s) for s in streams)


def stream_tables(streams: tuple[Stream, ...] = ALL_STREAMS) -> tuple[Table, ...]:
    """Every table the streaming job writes (gold is written by the reports)."""
    return (bronze(), *silver_tables(streams), quarantine(), late(), dead_letters())


def default_root(env: Mapping[str, str], given: str | None = None) -> str:
    """``given`` (a ``--output-root``) when set, else ``s3a://$S3_BUCKET/`` (the bucket's
    default from ``cityconf.keys``)."""
    if given:
        return given.rstrip("/") + "/"
    return f"s3a://{value(env, 'S3_BUCKET')}/"


@dataclass(frozen=True)
class Lake:
    """A lake root (``s3a://bucket/prefix/`` or a local folder) and its tables' full URIs."""

    root: str

    def uri(self, table: Table) -> str:
        """The table's location as Spark/Hadoop reads it (``s3a://...`` for S3)."""
        return f"{self.root.rstrip('/')}/{table.path}"

    def object_uri(self, table: Table) -> str:
        """The same location as delta-rs, pyarrow and boto3 name it (``s3://...`` for S3)."""
        uri = self.uri(table)
        if uri.startswith("s3a://"):
            return "s3://" + uri.removeprefix("s3a://")
        return uri

    def exists(self, spark: SparkSession, table: Table) -> bool:
        """Whether ``table`` is a Delta table yet (its first write creates it)."""
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(spark, self.uri(table)))

    @property
    def gold_root(self) -> str:
        return f"{self.root.rstrip('/')}/{GOLD}"
