"""The bridge's answer to each kind of Kafka error, on a scripted producer (no servers).

Real-server proofs of the same paths are in test_limits.py; a fatal producer error cannot be
caused on demand on a real broker, so it is proved here.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException

from bridge.app import EXIT_RESTART, Bridge, BridgeError
from bridge.settings import load_settings
from tests.bridge.helpers import sample

ENV = {"MQTT_URL": "mqtt://127.0.0.1:1", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}


class ScriptedProducer:
    """Records produce() calls; the test decides each delivery report."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.raise_on_produce: list[KafkaException] = []
        self.raise_on_poll: KafkaException | None = None

    def produce(
        self, topic: str, value: bytes, key: bytes | None, headers: list[Any], on_delivery: Any
    ) -> None:
        if self.raise_on_produce:
            raise self.raise_on_produce.pop(0)
        self.sent.append(
            {"topic": topic, "value": value, "headers": dict(headers), "cb": on_delivery}
        )

    def deliver(self, index: int, err: KafkaError | None = None) -> None:
        self.sent[index]["cb"](err, None)

    def poll(self, _timeout: float = 0) -> int:
        if self.raise_on_poll is not None:
            exc, self.raise_on_poll = self.raise_on_poll, None
            raise exc
        return 0

    def __len__(self) -> int:
        return 0


@pytest.fixture
def bridge() -> Bridge:
    b = Bridge(load_settings(ENV))
    b.producer = ScriptedProducer()  # type: ignore[assignment]
    b.acked: list[int] = []  # type: ignore[misc]
    b.client.ack_many = lambda mids: b.acked.extend(mids)  # type: ignore[method-assign,attr-defined]
    return b


def receive(b: Bridge, mid: int, seq: int, device: str = "dev-1") -> None:
    payload = orjson.dumps(sample("vehicle", device, seq))
    b._on_message(f"city/vehicle/{device}".encode(), payload, mid, 1, 0, 0, None)


def test_a_permanent_error_dead_letters_that_record_and_acks_in_order(bridge: Bridge) -> None:
    p = bridge.producer
    for mid in (1, 2, 3):
        receive(bridge, mid, mid)
    p.deliver(0)
    p.deliver(1, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    p.deliver(2)
    bridge._service_kafka()
    assert bridge.acked == [1]  # 2 waits for its dead letter; 3 waits behind it
    dead = p.sent[3]
    assert dead["topic"] == "dead_letter"
    assert dead["headers"]["dlq_reason"] == b"kafka_refused"
    assert b"TOPIC_AUTHORIZATION_FAILED" in dead["headers"]["dlq_detail"]
    assert orjson.loads(dead["value"])["seq"] == 2  # whole: it was not a size problem
    assert [s["topic"] for s in p.sent].count("vehicle_data") == 3  # never produced again
    p.deliver(3)
    bridge._service_kafka()
    assert bridge.acked == [1, 2, 3]
    assert bridge.stats.kafka_refused == 1 and bridge._fatal is None


def test_a_record_kafka_finds_too_large_is_capped_in_its_dead_letter(bridge: Bridge) -> None:
    receive(bridge, 1, 1)
    bridge.producer.deliver(0, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    bridge._service_kafka()
    dead = bridge.producer.sent[1]
    assert dead["topic"] == "dead_letter" and "dlq_payload_sha256" in dead["headers"]


def test_produce_raising_synchronously_dead_letters_and_moves_on(bridge: Bridge) -> None:
    too_large = KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    bridge.producer.raise_on_produce.append(too_large)
    receive(bridge, 1, 1)
    receive(bridge, 2, 2)
    sent = bridge.producer.sent
    assert [s["topic"] for s in sent] == ["dead_letter", "vehicle_data"]
    bridge.producer.deliver(0)
    bridge.producer.deliver(1)
    bridge._service_kafka()
    assert bridge.acked == [1, 2] and bridge._fatal is None


def test_a_fatal_producer_error_drains_and_exits_for_a_restart(bridge: Bridge) -> None:
    receive(bridge, 1, 1)
    receive(bridge, 2, 2)
    bridge.producer.deliver(0)
    fatal = KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence desync", fatal=True)
    bridge.producer.raise_on_poll = KafkaException(fatal)
    bridge._service_kafka()
    assert bridge._stopping and "OUT_OF_ORDER_SEQUENCE_NUMBER" in (bridge._fatal or "")
    bridge.producer.deliver(1, KafkaError(KafkaError._PURGE_QUEUE))
    bridge._service_kafka()
    assert bridge.acked == [1]  # 2 stays unacked: the broker redelivers it after the restart
    assert len(bridge.producer.sent) == 2  # nothing dead-lettered


def test_the_run_loop_turns_a_fatal_error_into_exit_code_75(bridge: Bridge) -> None:
    bridge._connect = lambda: None  # type: ignore[method-assign]
    bridge._drain = lambda: None  # type: ignore[method-assign]
    bridge._fail("the Kafka producer failed for good (X)")
    with pytest.raises(BridgeError) as err:
        bridge.run()
    assert err.value.exit_code == EXIT_RESTART and "\n" not in str(err.value)


def test_a_refused_dead_letter_or_a_given_up_retry_stops_the_bridge(bridge: Bridge) -> None:
    bridge._on_message(b"city/vehicle/dev-1", b"junk", 1, 1, 0, 0, None)
    bridge.producer.deliver(0, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    bridge._service_kafka()
    assert "dead letter" in (bridge._fatal or "") and bridge.acked == []

    other = Bridge(load_settings(ENV))
    other.producer = ScriptedProducer()  # type: ignore[assignment]
    receive(other, 1, 1)
    other.producer.deliver(0, KafkaError(KafkaError._MSG_TIMED_OUT))
    other._service_kafka()
    assert "gave up" in (other._fatal or "") and len(other.producer.sent) == 1
