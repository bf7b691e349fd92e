"""Pure DataFrame → DataFrame transforms of the streaming job; no sources, sinks or sessions.

``parse`` turns Kafka records into one wide frame: the Kafka columns, the contract fields
(typed, event time parsed) and ``error``, a one-line reason when the record breaks the
contract (null when valid). The projections below cut that frame into the lake's tables.
Validation is built from ``contract.streams`` with column expressions only (no Python UDF),
so it runs at JVM speed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contract import Field, FieldType, Stream
from contract.codec import TIMESTAMP_RE
from spark.schema import CORRUPT_COLUMN, EVENT_TIME, LINEAGE, PARTITION_COLUMNS, json_schema

KAFKA_COLUMNS = ("key", "value", "topic", "partition", "offset", "timestamp", "timestampType")
UUID_RE = r"^(urn:uuid:)?\{?[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}\}?$"
TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSX"
BRONZE_PARTITIONS = ("ingest_date", "batch_id")


def _field_problems(field: Field, corrupt: Column) -> list[Column]:
    """Null-or-reason columns, one per rule the contract states for ``field``."""
    c = F.col(f"_p.{field.name}")
    name = field.name
    problems: list[Column] = []
    if not field.nullable:
        problems.append(
            F.when(
                c.isNull(),
                F.when(
                    corrupt.isNotNull(), F.lit(f"{name}: missing, null or not {field.type}")
                ).otherwise(F.lit(f"{name}: missing or null")),
            )
        )
    if field.type is FieldType.TIMESTAMP:
        problems.append(
            F.when(~c.rlike(TIMESTAMP_RE.pattern), F.lit(f"{name}: not ISO 8601 UTC with ms"))
        )
    if field.type is FieldType.UUID:
        problems.append(F.when(~c.rlike(UUID_RE), F.lit(f"{name}: not a UUID")))
    if field.minimum is not None:
        problems.append(
            F.when(
                c < F.lit(field.minimum),
                F.concat(
                    F.lit(f"{name}: "), c.cast("string"), F.lit(f" is below {field.minimum:g}")
                ),
            )
        )
    if field.maximum is not None:
        problems.append(
            F.when(
                c > F.lit(field.maximum),
                F.concat(
                    F.lit(f"{name}: "), c.cast("string"), F.lit(f" is above {field.maximum:g}")
                ),
            )
        )
    if field.choices is not None:
        problems.append(
            F.when(
                ~c.isin(*field.choices),
                F.concat(
                    F.lit(f"{name}: '"), c, F.lit(f"' is not one of {', '.join(field.choices)}")
                ),
            )
        )
    return problems


def _error(stream: Stream) -> Column:
    corrupt = F.col(f"_p.{CORRUPT_COLUMN}")
    field_problems = [p for f in stream.fields for p in _field_problems(f, corrupt)]
    any_present = F.greatest(*(F.col(f"_p.{f.name}").isNotNull() for f in stream.fields))
    schema = F.concat_ws("; ", *field_problems)
    device = F.col("_p.device_id")
    key_mismatch = (
        F.col("key").isNotNull() & device.isNotNull() & (F.col("key").cast("string") != device)
    )
    return (
        F.when(F.col("value").isNull(), F.lit("invalid_json: empty value"))
        .when(
            corrupt.isNotNull() & ~any_present,
            F.lit(f"invalid_json: not a {stream.name} JSON object"),
        )
        .when(schema != "", F.concat(F.lit("schema: "), schema))
        .when(corrupt.isNotNull(), F.lit("schema: a field has the wrong type"))
        .when(
            key_mismatch,
            F.concat(
                F.lit("key_mismatch: Kafka key '"),
                F.col("key").cast("string"),
                F.lit("' != device_id '"),
                device,
                F.lit("'"),
            ),
        )
    )


def parse(kafka: DataFrame, stream: Stream) -> DataFrame:
    """Kafka records → Kafka columns (``kafka_*``) + contract fields + ``error``."""
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
    parsed = kafka.withColumn(
        "_p", F.from_json(F.col("value").cast("string"), json_schema(stream), options)
    )
    fields = []
    for f in stream.fields:
        value = F.col(f"_p.{f.name}")
        if f.type is FieldType.TIMESTAMP:
            value = F.try_to_timestamp(value, F.lit(TS_FORMAT))
        fields.append(value.alias(f.name))
    kafka_cols = [F.col(c).alias(f"kafka_{c}") for c in KAFKA_COLUMNS if c in kafka.columns]
    headers = [F.col("headers").alias("kafka_headers")] if "headers" in kafka.columns else []
    return parsed.select(*kafka_cols, *headers, *fields, _error(stream).alias("error"))


@dataclass(frozen=True)
class Projection:
    """One lake table's share of a parsed micro-batch: which rows, its columns, its partitions."""

    layer: str
    rows: Column
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...]


def _batch(batch_id: int) -> Column:
    return F.lit(batch_id).cast("long").alias("batch_id")


def bronze(batch_id: int) -> Projection:
    """Every Kafka record as it came, with the Kafka source's own column names."""
    cols = [F.col(f"kafka_{c}").alias(c) for c in (*KAFKA_COLUMNS, "headers")]
    date = F.to_date("kafka_timestamp").alias("ingest_date")
    return Projection("bronze", F.lit(True), (*cols, date, _batch(batch_id)), BRONZE_PARTITIONS)


def quarantine(batch_id: int) -> Projection:
    """Records that break the contract, the payload as text and the reason."""
    cols = (
        F.col("kafka_topic").alias("topic"),
        F.col("kafka_partition").alias("partition"),
        F.col("kafka_offset").alias("offset"),
        F.col("kafka_timestamp").alias("timestamp"),
        F.col("kafka_key").cast("string").alias("key"),
        F.col("kafka_value").cast("string").alias("payload"),
        F.col("error").alias("reason"),
        _batch(batch_id),
    )
    return Projection("quarantine", F.col("error").isNotNull(), cols, ("batch_id",))


def _typed(stream: Stream) -> list[Column]:
    lineage = [F.col(f.name).cast(f.dataType) for f in LINEAGE.fields]
    return [F.col(f.name) for f in stream.fields] + lineage


def silver(stream: Stream, watermark_ms: int, batch_id: int) -> Projection:
    """Deduplicated valid rows on time (event time after the batch's watermark), partitioned."""
    cols = (
        *_typed(stream),
        F.to_date(EVENT_TIME).alias("event_date"),
        F.hour(EVENT_TIME).alias("event_hour"),
        _batch(batch_id),
    )
    on_time = F.col(EVENT_TIME) > _watermark(watermark_ms)
    return Projection("silver", on_time, cols, PARTITION_COLUMNS)


def late(stream: Stream, watermark_ms: int, batch_id: int) -> Projection:
    """Valid rows whose event time is at or before the batch's watermark: kept, not in silver."""
    rows = F.col("error").isNull() & (F.col(EVENT_TIME) <= _watermark(watermark_ms))
    cols = (*_typed(stream), _watermark(watermark_ms).alias("watermark"), _batch(batch_id))
    return Projection("late", rows, cols, ("batch_id",))


def _watermark(watermark_ms: int) -> Column:
    return F.timestamp_millis(F.lit(watermark_ms))
