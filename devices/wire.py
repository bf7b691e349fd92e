"""The few MQTT 5 packets a publishing device exchanges once it is connected, as plain bytes.

paho builds every PUBLISH through ``MQTTMessageInfo``, ``Properties`` and a lock, writes it with
one ``send`` each, and reads each PUBACK a byte at a time: at 10,000 messages a second that was
most of the process's time. Connected sessions therefore speak these packets directly (MQTT 5.0
§3.3 PUBLISH, §3.4-3.7 acknowledgements, §3.12-3.14 ping and disconnect); paho still does the
CONNECT (will, login, TLS) and CONNACK. Pure functions, no I/O.
"""

from __future__ import annotations

PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 0x30, 0x40, 0x50, 0x60, 0x70
PINGRESP, DISCONNECT = 0xD0, 0xE0
PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"
"""Normal disconnection (reason 0 implied): the broker discards the will."""
DUP = 0x08


def varint(n: int) -> bytes:
    """MQTT's variable byte integer (the remaining length)."""
    if n < 128:
        return bytes((n,))
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def topic_head(topic: str) -> bytes:
    """The topic as the PUBLISH variable header starts it: 2-byte length, UTF-8."""
    raw = topic.encode()
    return len(raw).to_bytes(2, "big") + raw


def publish(head: bytes, payload: bytes, qos: int, mid: int, retain: bool = False) -> bytes:
    """A PUBLISH with no properties (``head`` from ``topic_head``; ``mid`` unused at QoS 0)."""
    first = PUBLISH | qos << 1 | retain
    if qos:
        size = len(head) + 3 + len(payload)
        return b"".join(
            (bytes((first,)), varint(size), head, mid.to_bytes(2, "big"), b"\0", payload)
        )
    return b"".join((bytes((first,)), varint(len(head) + 1 + len(payload)), head, b"\0", payload))


def pubrel(mid: int) -> bytes:
    return b"\x62\x02" + mid.to_bytes(2, "big")


def for_resend(packet: bytes) -> bytes:
    """What to send again after a reconnect: a PUBLISH with DUP set, a PUBREL as it was."""
    if packet[0] & 0xF0 == PUBLISH:
        return bytes((packet[0] | DUP,)) + packet[1:]
    return packet


def split(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete packets in ``data`` as (first byte, body), and the incomplete rest."""
    packets: list[tuple[int, bytes]] = []
    i, n = 0, len(data)
    while i + 2 <= n:
        size, shift, j = 0, 0, i + 1
        while True:
            if j >= n:
                return packets, data[i:]
            byte = data[j]
            size |= (byte & 0x7F) << shift
            j += 1
            if byte < 0x80:
                break
            shift += 7
        if j + size > n:
            break
        packets.append((data[i], data[j : j + size]))
        i = j + size
    return packets, data[i:]
