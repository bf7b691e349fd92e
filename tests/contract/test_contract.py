"""The message contract: topics, codec, validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

import contract
from contract import (
    DATA_STREAMS,
    GPS,
    STATUS,
    ContractError,
    Stream,
    decode,
    encode,
    validate,
)
from tests.contract.helpers import sample


@pytest.mark.parametrize("stream", contract.ALL_STREAMS, ids=lambda s: s.name)
def test_sample_of_every_stream_round_trips(stream: Stream) -> None:
    msg = sample(stream)
    assert validate(stream, msg) == []
    got_stream, device_id, decoded = decode(contract.mqtt_topic(stream, "car-1"), encode(msg))
    assert (got_stream, device_id, decoded) == (stream, "car-1", msg)


def test_every_data_stream_carries_the_envelope() -> None:
    for stream in DATA_STREAMS:
        assert stream.sequenced
        assert stream.field_names[:5] == ("id", "device_id", "seq", "timestamp", "scenario")
    assert not STATUS.sequenced


def test_kafka_topics_are_distinct_and_include_dead_letter() -> None:
    assert len(set(contract.KAFKA_TOPICS)) == len(contract.KAFKA_TOPICS)
    assert contract.DEAD_LETTER_TOPIC in contract.KAFKA_TOPICS


def test_validate_reports_every_error_at_once() -> None:
    msg = sample(GPS)
    del msg["hdop"]
    msg["satellites"] = "many"
    msg["seq"] = 0
    msg["colour"] = "red"
    errors = validate(GPS, msg)
    assert sorted(e.split(":")[0] for e in errors) == ["colour", "hdop", "satellites", "seq"]


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("seq", True, "expected int"),
        ("seq", 1.0, "expected int"),
        ("latitude", "52.1", "expected float"),
        ("latitude", 91.0, "above"),
        ("timestamp", "2026-11-23T08:00:00Z", "milliseconds"),
        ("id", "not-a-uuid", "not a UUID"),
        ("vehicle_type", "tank", "not one of"),
        ("hdop", None, "must not be null"),
    ],
)
def test_wrong_values_are_named(field: str, value: Any, fragment: str) -> None:
    msg = sample(GPS)
    msg[field] = value
    (error,) = validate(GPS, msg)
    assert error.startswith(f"{field}:") and fragment in error


def test_nullable_field_accepts_null() -> None:
    msg = sample(contract.TRAFFIC)
    msg["avg_speed_kmh"] = None
    assert validate(contract.TRAFFIC, msg) == []


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("city/gps/car-1", b'{"id": ', "invalid_json"),
        ("city/gps/car-1", b"\xff\xfe\x00junk", "invalid_json"),
        ("city/gps/car-1", b"[1, 2]", "not_an_object"),
        ("city/gps/car-1", b'{"device_id": "car-1"}', "schema"),
        ("city/bogus/car-1", b"{}", "unknown_topic"),
        ("city/gps", b"{}", "unknown_topic"),
        ("city/gps/car 1", b"{}", "unknown_topic"),
        ("city/gps/car-1", b" " * (contract.MAX_PAYLOAD_BYTES + 1), "oversize"),
        ("city/gps/car-2", encode(sample(GPS, "car-1")), "device_mismatch"),
    ],
)
def test_decode_names_the_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        decode(topic, payload)
    assert info.value.reason == reason


def test_timestamps_round_trip_with_milliseconds() -> None:
    when = datetime(2026, 11, 23, 8, 30, 1, 123456, tzinfo=UTC)
    text = contract.format_timestamp(when)
    assert text == "2026-11-23T08:30:01.123Z"
    assert contract.parse_timestamp(text) == when.replace(microsecond=123000)


def test_message_ids_are_deterministic_and_distinct() -> None:
    a = contract.message_id("s", 7, "car-1", "gps", 1)
    assert a == contract.message_id("s", 7, "car-1", "gps", 1)
    assert a != contract.message_id("s", 7, "car-1", "gps", 2)
    assert a != contract.message_id("s", 8, "car-1", "gps", 1)


def test_encode_is_compact_utf8_json() -> None:
    msg = sample(contract.EMERGENCY)
    msg["description"] = "Unfall auf der Straße"
    assert orjson.loads(encode(msg)) == msg
    assert "Straße".encode() in encode(msg)


def test_message_ids_are_uuid5_of_the_contract_namespace() -> None:
    import uuid

    from contract import MessageIds, message_id
    from contract.codec import ID_NAMESPACE

    # Pinned: another namespace would give every message of a replayed run a new id.
    assert uuid.UUID("6f1c8f3e-5a4b-4c1d-9e2f-c17f1ee70000") == ID_NAMESPACE
    ids = MessageIds("london-birmingham", 42, "london-birmingham-veh-00001", "gps")
    for seq in (1, 2, 999, 123_456):
        name = f"london-birmingham/42/london-birmingham-veh-00001/gps/{seq}"
        assert ids(seq) == str(uuid.uuid5(ID_NAMESPACE, name))
        device = "london-birmingham-veh-00001"
        want = str(uuid.uuid5(ID_NAMESPACE, name))
        assert message_id("london-birmingham", 42, device, "gps", seq) == want
        assert message_id("london-birmingham", 42, device, "gps", seq) == ids(seq)
