"""``devices.session.Sessions`` alone, over a ``socket.socketpair()``: the test plays the broker
on the other end (reads our packets with ``wire.split``, writes its acknowledgements)."""

from __future__ import annotations

import logging
import selectors
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices import wire
from devices.session import INFLIGHT, MAX_PACKET, READ, WRITE, Conn, Limits, Sessions

DEVICE, TOPIC = "dev-1", "city/vehicle/dev-1"


@dataclass
class Publish:
    first: int
    topic: str
    mid: int
    payload: bytes

    @property
    def qos(self) -> int:
        return self.first >> 1 & 3

    @property
    def dup(self) -> bool:
        return bool(self.first & wire.DUP)


@dataclass
class Rig:
    """Our end (``conn.sock``, registered like the network does) and the broker's (``peer``)."""

    sessions: Sessions
    conn: Conn
    peer: socket.socket
    sel: selectors.BaseSelector
    lost: list[Conn] = field(default_factory=list)
    pending: bytes = b""

    def open(self, limits: Limits | None = None) -> None:
        self.sessions.opened(self.conn, limits or Limits(INFLIGHT, 60.0))
        self.sessions.drain(self.conn)

    def reconnect(self, limits: Limits | None = None) -> None:
        """A new socket for the same connection (as paho's reconnect makes), then CONNACK."""
        old_ours, old_peer = self.conn.sock, self.peer
        assert old_ours is not None
        self.sel.unregister(old_ours)
        ours, self.peer = socket.socketpair()
        ours.setblocking(False)
        self.peer.setblocking(False)
        self.conn.sock, self.pending = ours, b""
        self.sel.register(ours, READ, self.conn)
        old_ours.close()
        old_peer.close()
        self.open(limits)

    def received(self) -> list[tuple[int, bytes]]:
        """Every whole packet we wrote that the broker has not read yet."""
        self.sessions.flush()
        while True:
            try:
                data = self.peer.recv(1 << 20)
            except BlockingIOError:
                break
            if not data:  # our end shut the connection
                break
            self.pending += data
        packets, self.pending = wire.split(self.pending)
        return packets

    def publishes(self) -> list[Publish]:
        out = []
        for first, body in self.received():
            assert first & 0xF0 == wire.PUBLISH, hex(first)
            n = int.from_bytes(body[:2], "big")
            topic, rest = body[2 : 2 + n].decode(), body[2 + n :]
            mid = 0
            if first >> 1 & 3:
                mid, rest = int.from_bytes(rest[:2], "big"), rest[2:]
            assert rest[0] == 0  # no properties
            out.append(Publish(first, topic, mid, rest[1:]))
        return out

    def ack(self, *mids: int) -> None:
        """The broker's PUBACKs, read by the session as the network would on READ."""
        self.peer.sendall(b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in mids))
        self.read()

    def read(self) -> None:
        """Let the session read until what the broker wrote has been consumed."""
        for _ in range(100):
            if not self.sel.select(0):
                return
            self.sessions.read(self.conn)


@pytest.fixture
def rig() -> Iterator[Rig]:
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    peer.setblocking(False)
    sel = selectors.DefaultSelector()
    lost: list[Conn] = []

    def on_lost(conn: Conn) -> None:  # what paho's disconnect path does for the network
        lost.append(conn)
        sessions.closed(conn)

    sessions = Sessions(sel, buffer_max=1000, lost=on_lost)
    conn = Conn(DEVICE)
    conn.sock = ours
    sel.register(ours, READ, conn)
    sessions.attach(DEVICE, conn)
    yield Rig(sessions, conn, peer, sel, lost)
    sel.close()
    ours.close()
    peer.close()


def test_a_partial_write_keeps_the_rest_and_finishes_when_writable(rig: Rig) -> None:
    """The kernel takes part of a pass's bytes: the rest waits, in order, for WRITE."""
    ours, sessions = rig.conn.sock, rig.sessions
    assert ours is not None
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    rig.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    rig.open()
    payloads = [f"{i:06d}".encode() * 500 for i in range(200)]  # 600 kB: far over the buffers
    for p in payloads:
        sessions.send(DEVICE, TOPIC, p, 0)
    sessions.flush()
    assert rig.conn.out, "the socket took everything: no partial write to test"
    assert rig.conn in sessions.writers
    assert rig.sel.get_key(ours).events == READ | WRITE
    got: list[Publish] = []
    for _ in range(10_000):
        got += rig.publishes()
        for key, mask in rig.sel.select(0):
            if mask & WRITE:
                sessions.write(key.data)
        if not rig.conn.out and len(got) == len(payloads):
            break
    assert [p.payload for p in got] == payloads
    assert rig.conn not in sessions.writers
    assert rig.sel.get_key(ours).events == READ


def test_a_packet_id_still_in_flight_is_not_reused_after_the_wrap(rig: Rig) -> None:
    """Message 1 stays unacknowledged while 65,535 others are acknowledged: when the ids wrap,
    id 1 is skipped (MQTT 5.0 §2.2.1: an id is free only once its exchange is complete)."""
    rig.open()
    rig.sessions.send(DEVICE, TOPIC, b"slow", 1)
    (slow,) = rig.publishes()
    seen = {slow.mid}
    for batch in range(132):
        for _ in range(INFLIGHT - 1):
            rig.sessions.send(DEVICE, TOPIC, b"x", 1)
        sent = rig.publishes()
        mids = [p.mid for p in sent]
        assert slow.mid not in mids, f"id {slow.mid} reused while in flight (batch {batch})"
        seen.update(mids)
        rig.ack(*mids)
    assert len(seen) == 65535  # every id went round once
    assert rig.sessions.unacked == 1
    rig.ack(slow.mid)
    assert rig.sessions.unacked == 0 and not rig.conn.inflight


def test_receive_maximum_bounds_the_messages_in_flight(rig: Rig) -> None:
    rig.open(Limits(receive_max=3, keepalive=60.0))
    for i in range(7):
        rig.sessions.send(DEVICE, TOPIC, b"%d" % i, 1)
    rig.sessions.send(DEVICE, TOPIC, b"qos0", 0)  # after them in the device's order
    first = rig.publishes()
    assert [p.payload for p in first] == [b"0", b"1", b"2"]
    assert rig.sessions.unacked == 8
    rig.ack(first[0].mid)
    second = rig.publishes()
    assert [p.payload for p in second] == [b"3"]
    rig.ack(*(p.mid for p in first[1:] + second))
    rest = rig.publishes()  # QoS 0 needs no window, but keeps its place in the device's order
    assert [p.payload for p in rest] == [b"4", b"5", b"6", b"qos0"]
    assert rig.sessions.unacked == 3
    rig.ack(*(p.mid for p in rest[:3]))
    assert rig.sessions.unacked == 0


def test_limits_read_the_properties_of_a_real_connack() -> None:
    """The property names are paho's: a typo would silently keep the defaults."""
    props = Properties(PacketTypes.CONNACK)
    props.ReceiveMaximum = 20
    props.ServerKeepAlive = 10
    props.MaximumPacketSize = 1000
    assert Limits.from_connack(props, 60) == Limits(20, 10, 1000)
    assert Limits.from_connack(Properties(PacketTypes.CONNACK), 60) == Limits(
        INFLIGHT, 60, MAX_PACKET
    )


def test_the_brokers_server_keep_alive_sets_when_to_ping_and_give_up(rig: Rig) -> None:
    """We asked for 60 s; the broker's CONNACK says 10: ping after 5 s idle, lost 5 s later."""
    t0 = rig.sessions.now = 1000.0
    rig.open(Limits.from_connack(SimpleNamespace(ServerKeepAlive=10), 60))
    rig.sessions.keepalive(rig.conn, t0 + 4.9)
    assert rig.received() == []
    rig.sessions.keepalive(rig.conn, t0 + 5.0)
    assert rig.received() == [(0xC0, b"")]  # PINGREQ
    rig.peer.sendall(b"\xd0\x00")  # PINGRESP: the link is alive
    rig.sessions.now = t0 + 5.1
    rig.read()
    rig.sessions.keepalive(rig.conn, t0 + 10.2)
    assert rig.received() == [(0xC0, b"")] and not rig.lost
    rig.sessions.keepalive(rig.conn, t0 + 15.3)  # no answer within half the keep alive
    assert rig.lost == [rig.conn] and not rig.conn.connected


def test_a_server_keep_alive_of_zero_means_no_pings(rig: Rig) -> None:
    rig.sessions.now = 0.0
    rig.open(Limits.from_connack(SimpleNamespace(ServerKeepAlive=0), 60))
    for t in (31.0, 1000.0, 10_000.0):
        rig.sessions.keepalive(rig.conn, t)
    assert rig.received() == [] and not rig.lost


def test_a_message_over_the_brokers_maximum_packet_size_is_refused_here(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.open(Limits(INFLIGHT, 60.0, max_packet=200))
    fits = next(
        p
        for n in range(200, 0, -1)
        if len(wire.publish(wire.topic_head(TOPIC), p := b"a" * n, 1, 1)) == 200
    )
    with caplog.at_level(logging.ERROR, logger="devices.session"):
        rig.sessions.send(DEVICE, TOPIC, fits, 1)
        rig.sessions.send(DEVICE, TOPIC, fits + b"!", 1)
        rig.sessions.send(DEVICE, TOPIC, fits + b"!!!", 0)  # no packet id: 2 bytes less
        rig.sessions.send(DEVICE, TOPIC, b"after", 1)
    got = rig.publishes()
    assert [p.payload for p in got] == [fits, b"after"]
    assert rig.sessions.too_large == 2 and rig.sessions.sent == 2
    assert rig.sessions.unacked == 2 and rig.conn.connected and not rig.lost
    (message, *_) = [r.getMessage() for r in caplog.records]
    assert DEVICE in message and TOPIC in message and "201-byte" in message
    assert "Maximum Packet Size of 200 bytes" in message


def test_after_a_reconnect_what_was_in_flight_goes_first_with_dup_then_the_buffer(
    rig: Rig,
) -> None:
    rig.open()
    for p in (b"1", b"2", b"3"):
        rig.sessions.send(DEVICE, TOPIC, p, 1)
    first = rig.publishes()
    rig.ack(first[0].mid)
    rig.sessions.lose(rig.conn)
    assert rig.lost == [rig.conn] and rig.sessions.open_count == 0
    rig.sessions.send(DEVICE, TOPIC, b"4", 1)  # offline: buffered
    rig.reconnect()
    again = rig.publishes()
    assert [(p.payload, p.dup) for p in again] == [(b"2", True), (b"3", True), (b"4", False)]
    assert [p.mid for p in again[:2]] == [p.mid for p in first[1:]]
    rig.ack(*(p.mid for p in again))
    assert rig.sessions.unacked == 0


def test_a_lower_receive_maximum_after_a_reconnect_holds_back_the_resends(rig: Rig) -> None:
    """Five in flight, and the new CONNACK allows two: two go again, the rest as acks make
    room, each with its own id and DUP; the buffer after them (MQTT 5.0 §3.3.4: more would
    make the broker disconnect us, and the resends again, in a loop)."""
    rig.open()
    for i in range(1, 6):
        rig.sessions.send(DEVICE, TOPIC, b"%d" % i, 1)
    first = rig.publishes()
    mids = {p.payload: p.mid for p in first}
    rig.sessions.lose(rig.conn)
    rig.sessions.send(DEVICE, TOPIC, b"6", 1)  # offline: buffered
    rig.reconnect(Limits(receive_max=2, keepalive=60.0))

    def step(*acked: bytes) -> list[tuple[bytes, bool]]:
        if acked:
            rig.ack(*(mids[a] for a in acked))
        got = rig.publishes()
        assert all(mids.get(p.payload, p.mid) == p.mid for p in got)  # original ids
        mids.update({p.payload: p.mid for p in got})
        return [(p.payload, p.dup) for p in got]

    assert step() == [(b"1", True), (b"2", True)]
    assert step(b"1") == [(b"3", True)]
    assert step(b"2", b"3") == [(b"4", True), (b"5", True)]
    assert step(b"4") == [(b"6", False)]  # the buffer only once every resend is out
    assert step(b"5", b"6") == [] and rig.sessions.unacked == 0
    assert rig.conn.connected and rig.lost == [rig.conn]  # only the loss we caused


def test_an_in_flight_message_over_a_lowered_maximum_packet_size_is_dropped_at_reconnect(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.open()
    for payload in (b"small", b"x" * 300, b"after"):
        rig.sessions.send(DEVICE, TOPIC, payload, 1)
    assert len(rig.publishes()) == 3
    rig.sessions.lose(rig.conn)
    with caplog.at_level(logging.ERROR, logger="devices.session"):
        rig.reconnect(Limits(INFLIGHT, 60.0, max_packet=200))
    again = rig.publishes()
    assert [(p.payload, p.dup) for p in again] == [(b"small", True), (b"after", True)]
    assert rig.sessions.too_large == 1 and rig.sessions.unacked == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert "exceeds the broker's Maximum Packet Size of 200 bytes" in message
    rig.ack(*(p.mid for p in again))
    assert rig.sessions.unacked == 0 and rig.conn.connected and rig.lost == [rig.conn]
