"""Kafka: the contract topics exist, and a produce is consumed back in full."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from contract import KAFKA_TOPICS

pytestmark = pytest.mark.integration


def _roundtrip(bootstrap: str, topic: str, count: int) -> list[bytes]:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(count):
        producer.produce(topic, key=f"dev-{i % 5}".encode(), value=f"m{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        empty_polls = 0
        while len(got) < count and empty_polls < 30:
            msg = consumer.poll(1.0)
            if msg is None:
                empty_polls += 1
                continue
            assert msg.error() is None, msg.error()
            got.append(msg.value())
    finally:
        consumer.close()
    return got


def test_contract_topics_exist_with_partitions(stack_env):
    metadata = AdminClient({"bootstrap.servers": stack_env["KAFKA_BOOTSTRAP_SERVERS"]}).list_topics(
        timeout=10
    )
    for topic in KAFKA_TOPICS:
        assert topic in metadata.topics, topic
        assert len(metadata.topics[topic].partitions) >= 3


def test_produce_and_consume(stack_env):
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"test-stack-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    try:
        got = _roundtrip(bootstrap, topic, 200)
        assert sorted(got) == sorted(f"m{i}".encode() for i in range(200))
    finally:
        admin.delete_topics([topic])


def test_private_kafka_survives_a_restart(private_kafka):
    broker = private_kafka()
    assert sorted(_roundtrip(broker.bootstrap, "device_status", 10)) == sorted(
        f"m{i}".encode() for i in range(10)
    )
    broker.stop()
    broker.start()
    got = _roundtrip(broker.bootstrap, "dead_letter", 5)
    assert sorted(got) == sorted(f"m{i}".encode() for i in range(5))
