"""FastClient's read path on hand-built MQTT 5 packets, no broker."""

import struct

from bridge.mqtt import FastClient


def publish(topic: bytes, payload: bytes, mid: int, qos: int = 1, props: bytes = b"") -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    body += bytes([len(props)]) + props + payload
    n, rl = len(body), bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        rl.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([0x30 | (qos << 1)]) + bytes(rl) + body


def test_parse_handles_batches_split_anywhere() -> None:
    got = []
    client = FastClient("t", lambda *a: got.append(a))
    stream = b"".join(
        publish(b"city/gps/d", b"x" * size, mid) for mid, size in enumerate([3, 300, 70000], 1)
    )
    buf = bytearray()
    for i in range(0, len(stream), 997):  # arbitrary chunk boundaries
        buf += stream[i : i + 997]
        client._parse(buf)
    assert not buf
    assert [(t, len(p), mid, q) for t, p, mid, q, *_ in got] == [
        (b"city/gps/d", 3, 1, 1),
        (b"city/gps/d", 300, 2, 1),
        (b"city/gps/d", 70000, 3, 1),
    ]


def test_ack_many_builds_pubacks_in_order() -> None:
    client = FastClient("t", lambda *a: None)
    sent = []
    client._packet_queue = lambda cmd, blob, mid, qos: sent.append(blob)
    client.ack_many([1, 258])
    assert sent == [b"\x40\x02\x00\x01\x40\x02\x01\x02"]


def test_a_packet_larger_than_the_broker_allows_is_never_buffered() -> None:
    from paho.mqtt.enums import MQTTErrorCode

    got = []
    client = FastClient("t", lambda *a: got.append(a))
    client.max_packet = 1000
    fine = publish(b"city/gps/d", b"x" * 900, 1)
    huge = publish(b"city/gps/d", b"x" * 5000, 2)
    buf = bytearray(fine + huge[:300])  # only the huge packet's header has arrived
    assert client._parse(buf) == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert [mid for _, _, mid, *_ in got] == [1] and not buf


def test_the_read_bound_is_the_brokers_max_packet_size_from_its_connack(caplog) -> None:
    from bridge.app import Bridge
    from bridge.mqtt import MQTT_MAX_PACKET
    from bridge.settings import load_settings

    env = {"MQTT_URL": "mqtt://127.0.0.1:1", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    bridge = Bridge(load_settings(env))
    bridge._bound_reads(bridge.client, 4 << 20)
    assert bridge.client.max_packet == 4 << 20 and not caplog.records
    bridge._bound_reads(bridge.client, None)  # a broker without max_packet_size
    assert bridge.client.max_packet == MQTT_MAX_PACKET
    assert "max_packet_size" in caplog.text
