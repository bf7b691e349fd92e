"""Spark schemas derived from the message contract; no field is ever listed here by hand.

Per stream:

* ``json_schema``: what ``from_json`` parses the Kafka value with. Timestamps stay strings so
  their exact contract format can be checked; a ``_corrupt_record`` column catches JSON that is
  not an object of this stream or has a field of the wrong type.
* ``silver_schema``: the typed contract fields (timestamps as ``TimestampType``) plus Kafka
  lineage and the partition column, exactly what the stream's silver table holds.
* ``dedup_keys``: what a row is deduplicated on, ``(device_id, seq)`` for sequenced streams.

And the tables shared by every stream (``spark.lake`` names them): ``BRONZE``, ``QUARANTINE``,
``LATE`` and ``DEAD_LETTERS``.
"""

from __future__ import annotations

from pyspark.sql import types as T

from contract import ALL_STREAMS, FieldType, Stream

SPARK_TYPES: dict[FieldType, T.DataType] = {
    FieldType.STRING: T.StringType(),
    FieldType.INT: T.LongType(),
    FieldType.FLOAT: T.DoubleType(),
    FieldType.BOOL: T.BooleanType(),
    FieldType.UUID: T.StringType(),
    FieldType.TIMESTAMP: T.TimestampType(),
}

CORRUPT_COLUMN = "_corrupt_record"
EVENT_TIME = "timestamp"
"""The contract's event-time field; in silver it is a real ``TimestampType``."""

LINEAGE = T.StructType(
    [
        T.StructField("kafka_partition", T.IntegerType()),
        T.StructField("kafka_offset", T.LongType()),
        T.StructField("kafka_timestamp", T.TimestampType()),
    ]
)
PARTITION_COLUMNS = ("event_date",)
"""Silver's partitioning: one folder per event day (an hour level measured no faster)."""
PARTITIONS = T.StructType([T.StructField("event_date", T.DateType())])

_KAFKA_RECORD = [
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("offset", T.LongType()),
    T.StructField("timestamp", T.TimestampType()),
]
_HEADERS = T.ArrayType(
    T.StructType([T.StructField("key", T.StringType()), T.StructField("value", T.BinaryType())])
)
BRONZE = T.StructType(
    [
        T.StructField("key", T.BinaryType()),
        T.StructField("value", T.BinaryType()),
        *_KAFKA_RECORD,
        T.StructField("timestampType", T.IntegerType()),
        T.StructField("headers", _HEADERS),
        T.StructField("ingest_date", T.DateType()),
    ]
)
"""Every Kafka record of every stream topic, with the Kafka source's own column names."""
BRONZE_PARTITIONS = ("ingest_date",)

QUARANTINE = T.StructType(
    [
        *_KAFKA_RECORD,
        T.StructField("key", T.StringType()),
        T.StructField("payload", T.StringType()),
        T.StructField("reason", T.StringType()),
    ]
)
"""Records that break the contract (or the clock guard): payload as text and a one-line reason."""

LATE = T.StructType(
    [
        T.StructField("stream", T.StringType()),
        T.StructField("device_id", T.StringType()),
        T.StructField("seq", T.LongType()),
        T.StructField("event_time", T.TimestampType()),
        T.StructField("kafka_timestamp", T.TimestampType()),
        T.StructField("newest_event_time", T.TimestampType()),
        T.StructField("lateness_s", T.DoubleType()),
    ]
)
"""A row that came late: its event time was ``lateness_s`` behind the newest its stream had
seen (``newest_event_time``). The row itself is in silver; this is only the record."""

DEAD_LETTERS = T.StructType(
    [
        *_KAFKA_RECORD,
        T.StructField("key", T.StringType()),
        T.StructField("payload", T.BinaryType()),
        T.StructField("reason", T.StringType()),
        T.StructField("detail", T.StringType()),
        T.StructField("source_topic", T.StringType()),
        T.StructField("bridge_id", T.StringType()),
        T.StructField("received_at", T.TimestampType()),
        T.StructField("headers", _HEADERS),
    ]
)
"""The bridge's ``dead_letter`` topic; its ``dlq_*`` and origin headers as columns."""


def json_schema(stream: Stream) -> T.StructType:
    """Parse schema: every field nullable (validation reports what is missing), ts as text."""
    fields = [
        T.StructField(
            f.name,
            T.StringType() if f.type is FieldType.TIMESTAMP else SPARK_TYPES[f.type],
            nullable=True,
        )
        for f in stream.fields
    ]
    return T.StructType([*fields, T.StructField(CORRUPT_COLUMN, T.StringType(), True)])


def contract_schema(stream: Stream) -> T.StructType:
    """The contract's fields with their Spark types and nullability."""
    return T.StructType(
        [T.StructField(f.name, SPARK_TYPES[f.type], nullable=f.nullable) for f in stream.fields]
    )


def silver_schema(stream: Stream) -> T.StructType:
    """Columns of a stream's silver table: contract fields, Kafka lineage, partition column."""
    return T.StructType([*contract_schema(stream).fields, *LINEAGE.fields, *PARTITIONS.fields])


def dedup_keys(stream: Stream) -> list[str]:
    """Sequenced streams: (device_id, seq). Presence has no seq: one row per announcement."""
    if stream.sequenced:
        return ["device_id", "seq"]
    return ["device_id", EVENT_TIME, "status"]


def stream_for_topic(topic: str) -> Stream:
    """The stream whose Kafka topic is ``topic``; KeyError names the known topics."""
    for stream in ALL_STREAMS:
        if stream.kafka_topic == topic:
            return stream
    known = ", ".join(s.kafka_topic for s in ALL_STREAMS)
    raise KeyError(f"{topic!r} is not a stream topic (known: {known})")


def ddl(schema: T.StructType) -> str:
    """A column list for ``CREATE TABLE``: ```name` type, ...``."""
    return ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)
