"""What happens on an open MQTT 5 connection, for every connection of the fleet at once.

paho opens each connection (socket, TLS, CONNECT with login and will, CONNACK) and notices its
end (``devices.mqtt``); in between, the session is ours and speaks ``devices.wire``: PUBLISHes
are queued per connection and written with one ``send`` per socket per loop pass, PUBACKs are
read in bulk, QoS 1/2 messages stay in ``Conn.inflight`` until acknowledged and are re-sent
first, in order, after a reconnect. A device whose connection is down, or whose connection's
window is full, waits in its own ordered buffer (bounded only while offline).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
from collections import deque

import paho.mqtt.client as mqtt

from devices import wire

log = logging.getLogger(__name__)
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
INFLIGHT = 500
"""QoS>0 messages unacknowledged per connection (or the broker's receive maximum, if lower)."""
AGAIN = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

Item = tuple[str, bytes, int, bool]
"""A message waiting to be sent: topic, payload, qos, retain."""


class Conn:
    """One MQTT connection, the devices it carries and its session state."""

    __slots__ = (
        "attempt", "backlog", "client", "client_id", "connected", "devices", "down_until",
        "failed", "inbuf", "inflight", "last_rx", "last_tx", "mid", "out", "ping_at", "queued",
        "retry_at", "sock", "window",
    )  # fmt: skip

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.client: mqtt.Client
        self.devices: list[Link] = []
        self.connected = False
        """CONNACK received and not lost since: the session (not paho) owns the socket."""
        self.failed: str | None = None
        self.inflight: dict[int, bytes] = {}
        """mid -> packet to re-send after a reconnect, oldest first (dicts keep order)."""
        self.window = INFLIGHT
        self.mid = 0
        self.out = bytearray()
        """Bytes not yet written; never shared with paho, which writes only before CONNACK."""
        self.inbuf = b""
        self.queued = 0
        """Messages waiting in this connection's device buffers."""
        self.backlog: deque[Link] = deque()
        """Devices with a non-empty buffer, in the order they started waiting."""
        self.last_tx = self.last_rx = self.ping_at = 0.0
        self.retry_at = 0.0
        self.down_until = 0.0
        self.attempt = 0
        self.sock: socket.socket | None = None


class Link:
    """One device's outbox on its connection."""

    __slots__ = ("buffer", "conn", "device_id", "heads", "waiting")

    def __init__(self, device_id: str, conn: Conn) -> None:
        self.device_id = device_id
        self.conn = conn
        self.buffer: deque[Item] = deque()
        self.waiting = False
        self.heads: dict[str, bytes] = {}
        """topic -> encoded topic header, built once per topic."""


class Sessions:
    """The data path of every open connection: outboxes, windows, acknowledgements."""

    def __init__(self, sel: selectors.BaseSelector, buffer_max: int) -> None:
        self.sel = sel
        self.buffer_max = buffer_max
        self.links: dict[str, Link] = {}
        self.dirty: set[Conn] = set()
        """Open sessions with bytes in ``out``, written at the next loop pass."""
        self.writers: set[Conn] = set()
        """Sockets watched for writability: the kernel buffer was full."""
        self.sent = self.dropped = self.rejected = 0
        self.open_count = 0
        """Connections past their CONNACK."""
        self.unacked = 0
        """QoS>0 messages in flight, plus messages queued on open connections."""
        self.now = 0.0
        """The loop pass's clock (monotonic), read once per pass."""

    def _opened(self, conn: Conn, receive_max: int) -> None:
        """CONNACK: what was in flight goes first, in order, DUP set; then the buffers drain."""
        conn.connected = True
        self.open_count += 1
        conn.last_tx = conn.last_rx = self.now
        conn.window = min(INFLIGHT, receive_max)
        self.unacked += conn.queued
        for mid, packet in conn.inflight.items():
            conn.inflight[mid] = again = wire.for_resend(packet)
            conn.out += again
        self.dirty.add(conn)

    def _closed(self, conn: Conn) -> None:
        if conn.connected:
            conn.connected = False
            self.open_count -= 1
            self.unacked -= conn.queued
        conn.out.clear()  # written to a dead socket or not at all: in-flight ones are re-sent
        conn.inbuf = b""
        conn.ping_at = 0.0
        self.dirty.discard(conn)

    # ----- the sink interface used by devices.emit
    def send(self, device_id: str, topic: str, payload: bytes, qos: int) -> None:
        link = self.links[device_id]
        conn = link.conn
        if conn.connected and not link.buffer and (not qos or len(conn.inflight) < conn.window):
            self._write(conn, link, topic, payload, qos, False)
        else:
            self._queue(link, (topic, payload, qos, False))

    def _write(
        self, conn: Conn, link: Link, topic: str, payload: bytes, qos: int, retain: bool
    ) -> None:
        head = link.heads.get(topic)
        if head is None:
            head = link.heads[topic] = wire.topic_head(topic)
        if qos:
            mid = conn.mid = conn.mid % 65535 + 1  # never 0; wraps long after an ack
            packet = conn.inflight[mid] = wire.publish(head, payload, qos, mid, retain)
            self.unacked += 1
        else:
            packet = wire.publish(head, payload, 0, 0, retain)
        conn.out += packet
        self.dirty.add(conn)
        self.sent += 1

    def _queue(self, link: Link, item: Item, front: bool = False) -> None:
        conn = link.conn
        if front:
            link.buffer.appendleft(item)
        else:
            link.buffer.append(item)
        conn.queued += 1
        if conn.connected:
            self.unacked += 1  # waiting for the window, not for the network: no drop
        elif len(link.buffer) > self.buffer_max:
            link.buffer.popleft()
            conn.queued -= 1
            self.dropped += 1
        if not link.waiting:
            link.waiting = True
            conn.backlog.append(link)

    def _drain(self, conn: Conn) -> None:
        """Send buffered messages, oldest first per device, as far as the window allows."""
        backlog = conn.backlog
        while backlog and conn.connected:
            link = backlog[0]
            buf = link.buffer
            while buf:
                topic, payload, qos, retain = buf[0]
                if qos and len(conn.inflight) >= conn.window:
                    return
                buf.popleft()
                conn.queued -= 1
                self.unacked -= 1
                self._write(conn, link, topic, payload, qos, retain)
            backlog.popleft()
            link.waiting = False

    # ----- socket events (called from the network's loop)
    def _read(self, conn: Conn) -> None:
        sock = conn.sock
        if sock is None:
            return
        try:
            data = sock.recv(65536)
            if isinstance(sock, ssl.SSLSocket):
                while sock.pending():  # decrypted bytes select() cannot see
                    data += sock.recv(65536)
        except AGAIN:
            return
        except OSError:
            data = b""
        if not data:
            self._lost(conn)
            return
        conn.last_rx = self.now
        conn.ping_at = 0.0
        inflight = conn.inflight
        if len(data) == 4 and data[0] == wire.PUBACK and data[1] == 2 and not conn.inbuf:
            # The usual read at a message a second per device: one PUBACK, success.
            if inflight.pop(data[2] << 8 | data[3], None) is not None:
                self.unacked -= 1
            if conn.backlog and len(inflight) < conn.window:
                self._drain(conn)
            return
        if conn.inbuf:
            data = conn.inbuf + data
        packets, conn.inbuf = wire.split(data)
        for first, body in packets:
            kind = first & 0xF0
            if kind == wire.PUBACK or kind == wire.PUBCOMP:
                if inflight.pop(int.from_bytes(body[:2], "big"), None) is not None:
                    self.unacked -= 1
                    if len(body) > 2 and body[2] >= 0x80:  # e.g. 0x87: the ACL refused it
                        self.rejected += 1
            elif kind == wire.PUBREC:
                mid = int.from_bytes(body[:2], "big")
                if mid in inflight:
                    inflight[mid] = packet = wire.pubrel(mid)
                    conn.out += packet
                    self.dirty.add(conn)
            elif kind != wire.PINGRESP:  # DISCONNECT from the broker, or a protocol error
                log.debug("%s: broker sent 0x%02x; dropping the connection", conn.client_id, first)
                self._lost(conn)
                return
        if conn.backlog and len(inflight) < conn.window:
            self._drain(conn)

    def _lost(self, conn: Conn) -> None:
        """End a session: paho, reading the closed socket, runs its disconnect path for us."""
        sock = conn.sock
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
            while sock.recv(65536):  # so paho's next read is the end of the stream
                pass
        conn.client.loop_read()

    def _flush(self) -> None:
        dirty, self.dirty = self.dirty, set()
        for conn in dirty:
            if conn.connected:
                self._send(conn)

    def _send(self, conn: Conn) -> None:
        """One ``send`` for everything the connection has queued; the rest waits for WRITE."""
        out, sock = conn.out, conn.sock
        if not out or sock is None:
            return
        try:
            n = sock.send(out)
        except AGAIN:
            n = 0
        except OSError:
            self._lost(conn)
            return
        conn.last_tx = self.now
        if n == len(out):
            out.clear()
            if conn in self.writers:
                self.writers.discard(conn)
                self.sel.modify(sock, READ, conn)
            return
        del out[:n]
        if conn not in self.writers:
            self.writers.add(conn)
            self.sel.modify(sock, READ | WRITE, conn)
