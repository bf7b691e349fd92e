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
    assert user_properties(raw)[0] == [("mqtt.user.trace", b"abc")]
    r = Router(ROUTES, "{stream}:{device_id}", "dead_letter", "b", 65536)
    rec = r.route(b"city/gps/g-1", orjson.dumps(sample("gps", "g-1")), 0, 1, 0, raw, 5)
    assert rec.key == b"gps:g-1" and ("mqtt.user.trace", b"abc") in rec.headers
    assert headers(rec)["mqtt_retain"] == b"1"


def test_bad_templates_are_refused() -> None:
    with pytest.raises(RouteError):
        compile_routes([{"filter": "city/#", "topic": "{nope}"}], "{device_id}")
    with pytest.raises(RouteError):
        compile_routes([{"filter": "city/#"}], "{device_id}")


def raw_properties(pairs: list[tuple[str, str]]) -> bytes:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = pairs
    packed = props.pack()
    # Skip the variable-byte length prefix (1 to 4 bytes).
    i = 0
    while packed[i] & 0x80:
        i += 1
    return packed[i + 1 :]


def test_user_properties_cannot_forge_bridge_headers() -> None:
    forged = [(name, "forged") for name in ("mqtt_topic", "bridge_id", "received_at", "dlq_reason")]
    body = orjson.dumps(sample("vehicle", "dev-1"))
    for payload in (body, b"not json"):  # a good record and a dead letter alike
        rec = router().route(b"city/vehicle/dev-1", payload, 1, 0, 0, raw_properties(forged), 77)
        h = rec.headers
        for name in ("mqtt_topic", "bridge_id", "received_at"):
            assert [v for k, v in h if k == name] == [headers(rec)[name]]  # exactly one
            assert headers(rec)[name] != b"forged"
            assert (f"mqtt.user.{name}", b"forged") in h
        assert [v for k, v in h if k == "dlq_reason"] == (
            [] if payload is body else [b"invalid_json"]
        )


def test_oversize_payload_is_capped_with_length_and_sha256() -> None:
    import hashlib

    payload = bytes(range(256)) * 5000  # 1.28 MB
    rec = router().route(b"city/vehicle/dev-1", payload, 1, 0, 0, None, 1)
    h = headers(rec)
    assert rec.topic == "dead_letter" and h["dlq_reason"] == b"oversize"
    assert rec.value == payload[:4096]
    assert h["dlq_payload_bytes"] == str(len(payload)).encode()
    assert h["dlq_payload_sha256"] == hashlib.sha256(payload).hexdigest().encode()


def test_oversize_payload_on_an_unknown_topic_is_capped_too() -> None:
    rec = router().route(b"city/nosuch/dev-1", b"x" * 2_000_000, 1, 0, 0, None, 1)
    assert headers(rec)["dlq_reason"] == b"oversize" and len(rec.value) == 4096


def test_oversize_user_properties_are_dropped_and_digested() -> None:
    body = orjson.dumps(sample("vehicle", "dev-1"))
    big = raw_properties([("k", "v" * 60000)] * 17)  # ~1 MB of properties
    assert len(big) > 1_000_000
    tiny = b"\x26\x00\x00\x00\x00" * 120_000  # 600 KB raw, ~2.4 MB as prefixed headers
    for raw in (big, tiny):
        rec = router().route(b"city/vehicle/dev-1", body, 1, 0, 0, raw, 1)
        h = headers(rec)
        assert rec.topic == "dead_letter" and h["dlq_reason"] == b"oversize_properties"
        assert rec.value == body  # the payload itself was fine
        assert not any(k.startswith("mqtt.user.") for k, _ in rec.headers)
        assert h["dlq_properties_bytes"] == str(len(raw)).encode()
        assert len(h["dlq_properties_head"]) == 4096
        assert sum(len(k) + len(v) for k, v in rec.headers) < 200_000


def test_topic_cache_holds_only_valid_topics() -> None:
    r = router()
    body = orjson.dumps(sample("vehicle", "dev-1"))
    for i in range(50):
        junk = f"city/vehicle/{'x' * 60000}{i}".encode()
        assert r.route(junk, body, 1, 0, 0, None, 1).reason == "unknown_topic"
    r.route(b"city/vehicle/dev-1", body, 1, 0, 0, None, 1)
    assert list(r._plans) == [b"city/vehicle/dev-1"]


def test_refused_record_becomes_a_dead_letter() -> None:
    body = orjson.dumps(sample("vehicle", "dev-1", 3))
    props = raw_properties([("trace", "t")])
    good = router().route(b"city/vehicle/dev-1", body, 1, 0, 0, props, 1)
    kept = router().refused(good, "TOPIC_AUTHORIZATION_FAILED: denied", shrink=False)
    h = headers(kept)
    assert kept.topic == "dead_letter" and kept.value == body and kept.key == b"dev-1"
    assert h["dlq_reason"] == b"kafka_refused" and b"AUTHORIZATION" in h["dlq_detail"]
    assert h["source_topic"] == b"city/vehicle/dev-1" and h["mqtt.user.trace"] == b"t"
    small = router().refused(good, "MSG_SIZE_TOO_LARGE: too large", shrink=True)
    assert len(small.value) <= 4096 and "mqtt.user.trace" not in headers(small)
    assert headers(small)["dlq_payload_bytes"] == str(len(body)).encode()


def test_settings_refuse_a_record_limit_without_room_for_headers() -> None:
    with pytest.raises(RouteError):
        Router(ROUTES, "{device_id}", "dead_letter", "b", 65536, max_record_bytes=300_000)


def test_property_parser_agrees_with_paho_and_refuses_malformed_blocks() -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 1
    props.MessageExpiryInterval = 60
    props.ContentType = "application/json"
    props.ResponseTopic = "reply/here"
    props.CorrelationData = b"\x00\x01"
    props.UserProperty = [("a", "1"), ("a", "2"), ("ünï", "çödé")]
    packed = props.pack()
    raw = packed[1:]
    got, size = user_properties(raw)
    assert sorted(got) == [
        ("mqtt.user.a", b"1"),
        ("mqtt.user.a", b"2"),
        ("mqtt.user.ünï", "çödé".encode()),
        ("mqtt_content_type", b"application/json"),
    ]  # sorted: the order of properties in the block is the sender's
    assert size > 0
    for bad in (
        raw[:-1],
        b"\x7f\x00",
        b"\x26\x00\x01",
        b"\x26\x00\x01\xff\x00\x00",
        b"\x26\x00\x01\x00\x00\x00",
    ):
        with pytest.raises(ValueError):
            user_properties(bad)
    rec = router().route(b"city/vehicle/dev-1", b"{}", 1, 0, 0, b"\x26\x00\x05ab", 1)
    assert headers(rec)["dlq_reason"] == b"bad_properties"
