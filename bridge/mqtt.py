"""The MQTT side: a paho 2.2 client with a batched receive path and batched acks.

paho reads each packet with three ``recv`` calls and builds an ``MQTTMessage`` per PUBLISH;
profiled, that capped a bridge near 9k msg/s. ``FastClient`` keeps paho for everything else
(connect, session, subscribe, keepalive, reconnect) and replaces only the read path: one large
``recv``, then every complete packet in the buffer; PUBLISH goes straight to a callback with
raw fields, any other packet to paho's own handler. Acks go out as one write per batch.
Both hooks lean on paho internals, so importing this module checks that the installed paho is
in ``PAHO_RANGE`` (pyproject.toml pins the same range) and has every private member the hooks
use, and fails with one line (``PahoMismatch``) otherwise, before a bridge could misparse.

No fallback to paho's own reader: it is far too slow. Measured over a socketpair (300-byte QoS 1
PUBLISHes in batches of 400, read until EAGAIN, paho 2.2.0, 2 cores at load 3, niced), our
reader takes 1.0-1.5 us a message (660k-960k msg/s) and paho's, with the adapter to our raw
callback, 35-38 us (26k-29k msg/s): reading alone would cost more than the whole bridge spends
a message now (25k-46k msg/s end to end in benchmarks/results), below the 20k msg/s goal.
"""

from __future__ import annotations

import inspect
import re
import ssl
import struct
from collections.abc import Callable, Iterable

import paho.mqtt.client as paho
from paho.mqtt import __version__ as paho_version
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.settings import BridgeMqttSettings

PAHO_RANGE = ((2, 2, 0), (2, 3, 0))
"""paho versions the hooks were written for: at least the first, below the second."""
_PAHO_METHODS = {"_packet_read", "_packet_handle", "_packet_queue", "_sock_recv"}
_PAHO_FIELDS = {"_sock", "_in_packet", "_last_bytes_received"}
_PAHO_MODULE = {"time_func", "MalformedPacket"}
_IN_PACKET_KEYS = {
    "command", "have_remaining", "packet", "pos", "remaining_count", "remaining_length",
    "remaining_mult", "to_process",
}  # fmt: skip
_QUEUE_PARAMS = ["self", "command", "packet", "mid", "qos"]


class PahoMismatch(ImportError):
    """The installed paho is not one the bridge's read and ack hooks were written for."""


def _version(text: str) -> tuple[int, int, int] | None:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def version_problem(version: str) -> str | None:
    """Why paho ``version`` is not one the hooks were written for, in one line, or None."""
    low, high = PAHO_RANGE
    found = _version(version)
    if found is not None and low <= found < high:
        return None
    wanted = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
    return f"paho-mqtt {version} is installed but bridge/mqtt.py was written for {wanted}"


def member_problem(module: object, client: object) -> str | None:
    """Which private member of paho (``module``, a ``Client`` instance) the hooks use is
    missing or changed, in one line, or None."""
    missing = sorted(
        {m for m in _PAHO_METHODS if not callable(getattr(type(client), m, None))}
        | {f for f in _PAHO_FIELDS if f not in vars(client)}
        | {f"paho.mqtt.client.{n}" for n in _PAHO_MODULE if not hasattr(module, n)}
    )
    in_packet = vars(client).get("_in_packet")
    if isinstance(in_packet, dict) and set(in_packet) != _IN_PACKET_KEYS:
        missing.append("_in_packet's keys")
    queue = getattr(type(client), "_packet_queue", None)
    if callable(queue) and list(inspect.signature(queue).parameters)[:5] != _QUEUE_PARAMS:
        missing.append("_packet_queue(command, packet, mid, qos)")
    if missing:
        return f"paho-mqtt lacks what bridge/mqtt.py uses: {', '.join(missing)}"
    return None


def _check_paho() -> None:
    """Version first: another version's ``Client`` may not even construct as below."""
    problem = version_problem(paho_version) or member_problem(
        paho, paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    )
    if problem:
        raise PahoMismatch(f"{problem}; install the pinned one: pip install -e .")


_check_paho()

READ_SIZE = 256 * 1024
MQTT_MAX_PACKET = 268_435_455 + 5
"""The largest packet MQTT can encode (remaining length 256 MiB, plus its fixed header)."""
PUBACK = 0x40
_PUBACKS = [struct.pack("!BBH", PUBACK, 2, mid) for mid in range(65536)]

# topic, payload, packet id, qos, retain, dup, raw MQTT 5 properties (None when empty)
OnPublish = Callable[[bytes, bytes, int, int, int, int, bytes | None], None]


class FastClient(paho.Client):
    def __init__(self, client_id: str, on_publish: OnPublish) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        self._fast_publish = on_publish
        self._rbuf = bytearray()
        self._rsock: object = None
        self.max_packet = MQTT_MAX_PACKET
        """The largest packet to hold; with READ_SIZE, the bound on the read buffer. The bridge
        sets it from the broker's CONNACK (its max_packet_size)."""

    def _packet_read(self) -> MQTTErrorCode:
        sock = self._sock
        if sock is not self._rsock:  # a new connection: bytes of the old one are void
            self._rbuf.clear()
            self._rsock = sock
        try:
            data = self._sock_recv(READ_SIZE)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        if not data:
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        self._last_bytes_received = paho.time_func()
        buf = self._rbuf
        buf += data
        return self._parse(buf)

    def _parse(self, buf: bytearray) -> MQTTErrorCode:
        pos, size = 0, len(buf)
        deliver = self._fast_publish
        try:
            while size - pos >= 2:
                header = buf[pos]
                # Remaining length: 1-4 bytes, 7 bits each.
                length, mult, i = 0, 1, pos + 1
                while True:
                    if i >= size:
                        return MQTTErrorCode.MQTT_ERR_AGAIN
                    byte = buf[i]
                    length += (byte & 0x7F) * mult
                    i += 1
                    if not byte & 0x80:
                        break
                    mult <<= 7
                    if mult > 128**3:
                        return MQTTErrorCode.MQTT_ERR_PROTOCOL
                end = i + length
                if end - pos > self.max_packet:
                    # More than the broker accepts from anyone: never buffer it.
                    pos = size
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                if end > size:
                    return MQTTErrorCode.MQTT_ERR_AGAIN
                if header & 0xF0 == 0x30:
                    qos = (header >> 1) & 3
                    if qos == 2:  # never subscribed at QoS 2; refuse rather than misparse
                        return MQTTErrorCode.MQTT_ERR_PROTOCOL
                    tlen = (buf[i] << 8) | buf[i + 1]
                    i += 2
                    topic = bytes(buf[i : i + tlen])
                    i += tlen
                    mid = 0
                    if qos:
                        mid = (buf[i] << 8) | buf[i + 1]
                        i += 2
                    plen, mult = 0, 1
                    while True:
                        byte = buf[i]
                        i += 1
                        plen += (byte & 0x7F) * mult
                        if not byte & 0x80:
                            break
                        mult <<= 7
                    props = bytes(buf[i : i + plen]) if plen else None
                    i += plen
                    deliver(
                        topic, bytes(buf[i:end]), mid, qos, header & 1, (header >> 3) & 1, props
                    )
                else:
                    rc = self._paho_packet(header, bytes(buf[i:end]), buf[pos + 1 : i], length)
                    if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        pos = end
                        return rc
                pos = end
            return MQTTErrorCode.MQTT_ERR_AGAIN
        finally:
            del buf[:pos]

    def _paho_packet(self, header: int, body: bytes, rl: bytearray, length: int) -> MQTTErrorCode:
        """Hand a non-PUBLISH packet to paho's handler, as its own reader would have."""
        self._in_packet = {
            "command": header,
            "have_remaining": 1,
            "remaining_count": list(rl),
            "remaining_mult": 1,
            "remaining_length": length,
            "packet": body,
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except paho.MalformedPacket:
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {
            "command": 0,
            "have_remaining": 0,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": 0,
            "packet": bytearray(b""),
            "to_process": 0,
            "pos": 0,
        }
        return rc

    def ack_many(self, mids: Iterable[int]) -> MQTTErrorCode:
        """PUBACK each packet id, in order, in a single write."""
        blob = b"".join([_PUBACKS[m] for m in mids])
        if not blob:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._packet_queue(PUBACK, blob, 0, 0)


def build_client(s: BridgeMqttSettings, on_publish: OnPublish) -> FastClient:
    client = FastClient(s.client_id, on_publish)
    if s.username:
        client.username_pw_set(s.username, s.password)
    if s.tls:
        client.tls_set(ca_certs=s.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    # paho's own in-flight cap is for outgoing messages; ours is Receive Maximum below.
    client.max_queued_messages_set(0)
    return client


def connect_properties(s: BridgeMqttSettings) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = s.session_expiry_s
    # The broker never has more than this many unacked QoS 1 messages out to us: with acks
    # held until Kafka confirms, this is the bound on what the bridge holds in memory.
    props.ReceiveMaximum = s.receive_maximum
    return props
