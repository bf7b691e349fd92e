import orjson
import pytest

import contract
from bridge.routing import Route, RouteError, Router, compile_routes, user_properties
from tests.bridge.helpers import sample

ROUTES = compile_routes(
    [
        {"filter": "city/status/+", "topic": "device_status"},
        {"filter": "city/+/+", "topic": "{stream_topic}"},
    ],
    "{device_id}",
)


def router(max_bytes: int = 65536) -> Router:
    return Router(ROUTES, "{device_id}", "dead_letter", "b1", max_bytes)


def headers(record) -> dict[str, bytes]:
    return dict(record.headers)


@pytest.mark.parametrize("stream", [s.name for s in contract.ALL_STREAMS])
def test_valid_message_goes_to_its_stream_topic_byte_for_byte(stream: str) -> None:
    payload = orjson.dumps(sample(stream, "dev-1", 7))
    rec = router().route(f"city/{stream}/dev-1".encode(), payload, 1, 0, 1, None, 1234)
    assert rec.reason is None
    assert rec.topic == contract.STREAMS[stream].kafka_topic
    assert rec.key == b"dev-1"
    assert rec.value is payload
    h = headers(rec)
    assert h["mqtt_topic"] == f"city/{stream}/dev-1".encode()
    assert (h["mqtt_qos"], h["mqtt_retain"], h["mqtt_dup"]) == (b"1", b"0", b"1")
    assert h["received_at"] == b"1234" and h["bridge_id"] == b"b1"
    assert rec.seq == (7 if contract.STREAMS[stream].sequenced else None)


def dead(topic: str, payload: bytes, max_bytes: int = 65536):
    rec = router(max_bytes).route(topic.encode(), payload, 1, 0, 0, None, 1)
    assert rec.topic == "dead_letter" and rec.value is payload
    h = headers(rec)
    assert h["source_topic"] == topic.encode() and h["dlq_detail"]
    return h["dlq_reason"].decode()


def test_dead_letter_reasons() -> None:
    good = sample("vehicle", "dev-1")
    body = orjson.dumps(good)
    assert dead("city/vehicle/dev-1", body[:40]) == "invalid_json"
    assert dead("city/vehicle/dev-1", b"\x00\xff\xfejunk") == "invalid_json"
    assert dead("city/vehicle/dev-1", b"[1,2]") == "not_an_object"
    assert dead("city/vehicle/dev-1", orjson.dumps({**good, "seq": "7"})) == "schema"
    assert dead("city/vehicle/dev-1", orjson.dumps({**good, "extra": 1})) == "schema"
    missing = {k: v for k, v in good.items() if k != "speed_kmh"}
    assert dead("city/vehicle/dev-1", orjson.dumps(missing)) == "schema"
    assert dead("city/vehicle/dev-2", body) == "device_mismatch"
    assert dead("city/nosuch/dev-1", body) == "unknown_topic"
    assert dead("elsewhere/x", body) == "unknown_topic"
    assert dead("city/vehicle/dev-1", body, max_bytes=100) == "oversize"


def test_route_without_match_is_a_dead_letter() -> None:
    r = Router((Route("city/gps/+", "gps_data"),), "{device_id}", "dead_letter", "b", 65536)
    rec = r.route(b"city/vehicle/dev-1", orjson.dumps(sample("vehicle", "dev-1")), 1, 0, 0, None, 1)
    assert rec.reason == "unknown_topic"


def test_key_template_and_user_properties() -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("trace", "abc")]
    raw = props.pack()[1:]  # drop the one-byte length prefix
    assert user_properties(raw) == [("trace", b"abc")]
    r = Router(ROUTES, "{stream}:{device_id}", "dead_letter", "b", 65536)
    rec = r.route(b"city/gps/g-1", orjson.dumps(sample("gps", "g-1")), 0, 1, 0, raw, 5)
    assert rec.key == b"gps:g-1" and ("trace", b"abc") in rec.headers
    assert headers(rec)["mqtt_retain"] == b"1"


def test_bad_templates_are_refused() -> None:
    with pytest.raises(RouteError):
        compile_routes([{"filter": "city/#", "topic": "{nope}"}], "{device_id}")
    with pytest.raises(RouteError):
        compile_routes([{"filter": "city/#"}], "{device_id}")
