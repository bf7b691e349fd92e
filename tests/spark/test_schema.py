"""The Spark schemas are derived from the contract and agree with it, field by field."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from contract import ALL_STREAMS, FieldType
from spark.schema import (
    CORRUPT_COLUMN,
    LINEAGE,
    PARTITION_COLUMNS,
    contract_schema,
    json_schema,
    silver_schema,
    stream_for_topic,
)

EXPECTED = {
    FieldType.STRING: "string",
    FieldType.UUID: "string",
    FieldType.INT: "bigint",
    FieldType.FLOAT: "double",
    FieldType.BOOL: "boolean",
    FieldType.TIMESTAMP: "timestamp",
}


@pytest.mark.parametrize("stream", ALL_STREAMS, ids=lambda s: s.name)
def test_silver_schema_is_the_contract_plus_lineage_and_partitions(stream) -> None:
    schema = silver_schema(stream)
    names = schema.fieldNames()
    n = len(stream.fields)
    assert names[:n] == list(stream.field_names)
    assert names[n:] == [*LINEAGE.fieldNames(), *PARTITION_COLUMNS]
    for field in stream.fields:
        spark_field = schema[field.name]
        assert spark_field.dataType.simpleString() == EXPECTED[field.type], field.name
        assert spark_field.nullable == field.nullable, field.name


@pytest.mark.parametrize("stream", ALL_STREAMS, ids=lambda s: s.name)
def test_json_schema_parses_every_field_and_keeps_timestamps_as_text(stream) -> None:
    schema = json_schema(stream)
    assert schema.fieldNames() == [*stream.field_names, CORRUPT_COLUMN]
    for field in stream.fields:
        want = (
            T.StringType()
            if field.type is FieldType.TIMESTAMP
            else contract_schema(stream)[field.name].dataType
        )
        assert schema[field.name].dataType == want
        assert schema[field.name].nullable


def test_topics_map_back_to_streams() -> None:
    for stream in ALL_STREAMS:
        assert stream_for_topic(stream.kafka_topic) is stream
    with pytest.raises(KeyError, match="not a stream topic"):
        stream_for_topic("nope")
