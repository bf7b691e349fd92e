"""Spark reads Kafka through the local connector jars and writes Parquet to s3a://."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration

ROWS = 500


def test_streaming_kafka_to_s3a_parquet_and_back(stack_env, spark, tmp_path):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    run = uuid.uuid4().hex[:10]
    topic = f"test-spark-{run}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(ROWS):
        producer.produce(topic, key=f"dev-{i % 7}".encode(), value=json.dumps({"n": i}).encode())
    assert producer.flush(30) == 0

    out = f"s3a://{stack_env['S3_BUCKET']}/tests/spark/{run}/out"
    try:
        stream = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("subscribe", topic)
            .option("startingOffsets", "earliest")
            .load()
            .selectExpr(
                "CAST(key AS STRING) AS key", "get_json_object(CAST(value AS STRING), '$.n') AS n"
            )
        )
        query = (
            stream.writeStream.format("parquet")
            .option("path", out)
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination(300)
        assert query.exception() is None
        rows = spark.read.parquet(out).collect()
        assert sorted(int(r["n"]) for r in rows) == list(range(ROWS))
        assert {r["key"] for r in rows} == {f"dev-{i}" for i in range(7)}
    finally:
        admin.delete_topics([topic])
