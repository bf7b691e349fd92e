"""The hand-built MQTT 5 packets against the standard's byte layout (MQTT 5.0 §1.5.5, §3.3)."""

from __future__ import annotations

from devices import wire


def test_varint_matches_the_standards_examples() -> None:
    assert wire.varint(0) == b"\x00"
    assert wire.varint(127) == b"\x7f"
    assert wire.varint(128) == b"\x80\x01"
    assert wire.varint(16_383) == b"\xff\x7f"
    assert wire.varint(16_384) == b"\x80\x80\x01"
    assert wire.varint(268_435_455) == b"\xff\xff\xff\x7f"


def test_publish_layout_qos1_retain_and_resend_sets_dup() -> None:
    packet = wire.publish(wire.topic_head("city/vehicle/a"), b"{}", 1, 0x1234, retain=True)
    assert packet == b"\x33\x15\x00\x0ecity/vehicle/a\x12\x34\x00{}"
    assert wire.for_resend(packet) == b"\x3b" + packet[1:]
    assert wire.for_resend(wire.pubrel(7)) == b"\x62\x02\x00\x07"


def test_publish_qos0_has_no_packet_id() -> None:
    assert wire.publish(wire.topic_head("t"), b"x", 0, 99) == b"\x30\x05\x00\x01t\x00x"


def test_split_returns_whole_packets_and_keeps_the_rest() -> None:
    big = wire.publish(wire.topic_head("t"), b"y" * 300, 1, 1)
    data = b"\x40\x02\x00\x01" + b"\xd0\x00" + b"\x40\x03\x00\x02\x87" + big + b"\x40\x02\x00"
    packets, rest = wire.split(data)
    assert packets == [
        (0x40, b"\x00\x01"),
        (0xD0, b""),
        (0x40, b"\x00\x02\x87"),
        (big[0], big[3:]),
    ]
    assert rest == b"\x40\x02\x00"
    assert wire.split(big[:2]) == ([], big[:2])  # remaining length not complete yet
