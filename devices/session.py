"""What happens on an open MQTT 5 connection, for every connection of the fleet at once.

paho opens each connection (socket, TLS, CONNECT with login and will, CONNACK) and notices its
end (``devices.mqtt``); in between, the session is ours and speaks ``devices.wire``: PUBLISHes
are queued per connection and written with one ``send`` per socket per loop pass, PUBACKs are
read in bulk, QoS 1/2 messages stay in ``Conn.inflight`` until acknowledged and are re-sent
first, in order, after a reconnect (no more at once than the broker's Receive Maximum). A device
whose connection is down, or whose connection's window is full, waits in its own ordered buffer
(bounded only while offline).

``Sessions`` is a collaborator of the network, not its base class: it knows sockets, a selector
and the broker's CONNACK limits (``Limits``), never paho, so its unit tests drive it over a
``socket.socketpair()`` with no broker. When a session must end, it calls the ``lost`` callback
it was given (the network lets paho run its disconnect path, which calls ``closed``).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devices import wire

if TYPE_CHECKING:
    import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
INFLIGHT = 500
"""QoS>0 messages unacknowledged per connection (or the broker's receive maximum, if lower)."""
MAX_PACKET = 268_435_460
"""The largest packet MQTT can frame (MQTT 5.0 §3.1.2.11): the limit when the broker sets none."""
AGAIN = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

Item = tuple[str, bytes, int, bool]
"""A message waiting to be sent: topic, payload, qos, retain."""


@dataclass(frozen=True)
class Limits:
    """What the broker's CONNACK sets for the session (MQTT 5.0 §3.2.2.3)."""

    receive_max: int
    """Receive Maximum: QoS>0 messages it takes unacknowledged (we use at most ``INFLIGHT``)."""
    keepalive: float
    """Server Keep Alive if the broker sent one, else the keepalive we asked for; 0: none."""
    max_packet: int = MAX_PACKET
    """Maximum Packet Size: a larger packet would make the broker disconnect us."""

    @classmethod
    def from_connack(cls, properties: Any, keepalive: float) -> Limits:
        """From paho's CONNACK ``Properties``; an absent property keeps the standard's default."""
        return cls(
            receive_max=getattr(properties, "ReceiveMaximum", INFLIGHT),
            keepalive=getattr(properties, "ServerKeepAlive", keepalive),
            max_packet=getattr(properties, "MaximumPacketSize", MAX_PACKET),
        )


class Conn:
    """One MQTT connection, the devices it carries and its session state."""

    __slots__ = (
        "attempt", "backlog", "client", "client_id", "connected", "devices", "down_until",
        "failed", "inbuf", "inflight", "keepalive", "last_rx", "last_tx", "max_packet", "mid",
        "out", "ping_at", "queued", "resend", "retry_at", "sock", "window",
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
        self.resend: deque[int] = deque()
        """In-flight ids not yet re-sent on this connection: a lower Receive Maximum than the
        last connection's holds them back until acks make room (MQTT 5.0 §3.3.4)."""
        self.window = INFLIGHT
        self.keepalive = 0.0
        self.max_packet = MAX_PACKET
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
    """The data path of every open connection: outboxes, windows, acknowledgements, pings.

    The network calls ``opened``/``closed`` at CONNACK and at the connection's end, ``read``
    and ``write`` when the selector says so, ``flush`` once per loop pass and ``keepalive``
    every few seconds; devices call ``send`` (the sink interface of ``devices.emit``)."""

    def __init__(
        self, sel: selectors.BaseSelector, buffer_max: int, lost: Callable[[Conn], None]
    ) -> None:
        self.sel = sel
        self.buffer_max = buffer_max
        self.lost = lost
        """Called when a session must end, after its socket is shut down and drained."""
        self.links: dict[str, Link] = {}
        self.dirty: set[Conn] = set()
        """Open sessions with bytes in ``out``, written at the next loop pass."""
        self.writers: set[Conn] = set()
        """Sockets watched for writability: the kernel buffer was full."""
        self.sent = self.dropped = self.rejected = self.too_large = 0
        self.open_count = 0
        """Connections past their CONNACK."""
        self.unacked = 0
        """QoS>0 messages in flight, plus messages queued on open connections."""
        self.now = 0.0
        """The loop pass's clock (monotonic), set by the network once per pass."""

    def attach(self, device_id: str, conn: Conn) -> Link:
        """The device's outbox on ``conn``."""
        link = self.links[device_id] = Link(device_id, conn)
        conn.devices.append(link)
        return link

    def opened(self, conn: Conn, limits: Limits) -> None:
        """CONNACK: what was in flight goes first, in order, DUP set; the network then queues
        what must lead (``online``) and calls ``drain``."""
        conn.connected = True
        self.open_count += 1
        conn.last_tx = conn.last_rx = self.now
        conn.window = min(INFLIGHT, limits.receive_max)
        conn.keepalive = limits.keepalive
        conn.max_packet = limits.max_packet
        self.unacked += conn.queued
        conn.resend.clear()
        for mid, packet in list(conn.inflight.items()):
            if len(packet) > conn.max_packet:  # the broker's limit fell since it was sent
                del conn.inflight[mid]
                self.unacked -= 1
                self._refuse(conn, len(packet))
                continue
            conn.inflight[mid] = wire.for_resend(packet)
            conn.resend.append(mid)
        self._resend(conn)

    def _resend(self, conn: Conn) -> None:
        """Re-send held in-flight messages, in order, while fewer than the window are out."""
        held, inflight = conn.resend, conn.inflight
        while held and len(inflight) - len(held) < conn.window:
            packet = inflight.get(held.popleft())
            if packet is not None:  # else acknowledged meanwhile
                conn.out += packet
        self.dirty.add(conn)

    def closed(self, conn: Conn) -> None:
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
            self.queue(link, (topic, payload, qos, False))

    def _write(
        self, conn: Conn, link: Link, topic: str, payload: bytes, qos: int, retain: bool
    ) -> None:
        head = link.heads.get(topic)
        if head is None:
            head = link.heads[topic] = wire.topic_head(topic)
        if qos:
            inflight = conn.inflight
            mid = conn.mid % 65535 + 1  # never 0
            while mid in inflight:  # still unacknowledged since the last wrap: not reusable
                mid = mid % 65535 + 1
            conn.mid = mid
            packet = wire.publish(head, payload, qos, mid, retain)
        else:
            packet = wire.publish(head, payload, 0, 0, retain)
        if len(packet) > conn.max_packet:
            self._refuse(conn, len(packet), link.device_id, topic)
            return
        if qos:
            inflight[mid] = packet
            self.unacked += 1
        conn.out += packet
        self.dirty.add(conn)
        self.sent += 1

    def _refuse(self, conn: Conn, size: int, device_id: str = "", topic: str = "") -> None:
        """Too big for this broker: sent, it would only make the broker drop the connection."""
        self.too_large += 1
        log.error(
            "%s: a %s-byte MQTT packet%s exceeds the broker's Maximum Packet Size of %s bytes "
            "(its CONNACK); not sent, counted as too_large; make the message smaller or raise "
            "the broker's max_packet_size",
            device_id or conn.client_id, f"{size:,}", f" on {topic}" if topic else "",
            f"{conn.max_packet:,}",
        )  # fmt: skip

    def queue(self, link: Link, item: Item, front: bool = False) -> None:
        """Into the device's ordered buffer (``front``: ahead of what waits, as ``online``)."""
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

    def drain(self, conn: Conn) -> None:
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

    def disconnect(self, conn: Conn) -> None:
        """A normal DISCONNECT (the broker discards the will and closes the socket)."""
        conn.out += wire.DISCONNECT_PACKET
        self.dirty.add(conn)

    def keepalive(self, conn: Conn, now: float) -> None:
        """Ping after half the keepalive without traffic; no answer within it: the link is dead."""
        if not conn.keepalive:  # the broker said 0: no keepalive on this session
            return
        half = conn.keepalive / 2
        if conn.ping_at:
            if now - conn.ping_at > half:
                self.lose(conn)
        elif now - conn.last_tx >= half or now - conn.last_rx >= half:
            conn.ping_at = now
            conn.out += wire.PINGREQ_PACKET
            self.dirty.add(conn)

    # ----- socket events (called from the network's loop)
    def read(self, conn: Conn) -> None:
        """What the broker sent: acknowledgements free the window, which drains the buffers.
        (The socket's read stays inline: this runs once per acknowledgement.)"""
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
            self.lose(conn)
            return
        conn.last_rx = self.now
        conn.ping_at = 0.0
        inflight = conn.inflight
        if len(data) == 4 and data[0] == wire.PUBACK and data[1] == 2 and not conn.inbuf:
            # The usual read at a message a second per device: one PUBACK, success.
            if inflight.pop(data[2] << 8 | data[3], None) is not None:
                self.unacked -= 1
        elif not self._handle(conn, data):
            return
        if conn.resend:
            self._resend(conn)
        if conn.backlog and len(inflight) < conn.window:
            self.drain(conn)

    def _handle(self, conn: Conn, data: bytes) -> bool:
        """Every whole packet read so far; False if the session had to end."""
        if conn.inbuf:
            data = conn.inbuf + data
        packets, conn.inbuf = wire.split(data)
        inflight = conn.inflight
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
                self.lose(conn)
                return False
        return True

    def lose(self, conn: Conn) -> None:
        """End a session: shut the socket and read it to its end, then tell the network."""
        sock = conn.sock
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
            while sock.recv(65536):  # so paho's next read is the end of the stream
                pass
        self.lost(conn)

    def flush(self) -> None:
        """Write what every session queued since the last pass."""
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, set()
        for conn in dirty:
            if conn.connected:
                self.write(conn)

    def write(self, conn: Conn) -> None:
        """One ``send`` for everything the connection has queued; the rest waits for WRITE."""
        out, sock = conn.out, conn.sock
        if not out or sock is None:
            return
        try:
            n = sock.send(out)
        except AGAIN:
            n = 0
        except OSError:
            self.lose(conn)
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
