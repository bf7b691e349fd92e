"""MQTT for the whole fleet: one paho v5 connection per device (or N shared gateway ones), all
driven from one thread by a ``selectors`` loop over ``client.socket()``.

Each device behaves like hardware: client id = device id, retained ``online`` status on connect,
a last will that sets ``offline``, reconnects with jittered exponential backoff, and while its
connection is down it buffers in order (bounded; drops counted) and replays on reconnect, after
paho has re-sent what was in flight, so a subscriber sees each device's seq in order.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlparse
from zlib import crc32

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from contract import encode, format_timestamp, status_topic
from devices.scenario import Scenario

log = logging.getLogger(__name__)
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
INFLIGHT = 100
HIGH_WATER = 20_000
"""Unacknowledged QoS>0 messages across the fleet before the simulation waits for the network."""


class BrokerError(Exception):
    """The broker cannot be used: unreachable, or it refused our login."""


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int
    tls: bool
    ca_file: str | None
    device_user: str
    device_password: str
    gateway_user: str
    gateway_password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], broker: str | None = None) -> MqttSettings:
        url = broker or env.get("MQTT_URL") or "mqtt://127.0.0.1:1883"
        if "://" not in url:
            url = f"mqtt://{url}"
        parsed = urlparse(url)
        tls = parsed.scheme in ("mqtts", "ssl", "tls")
        if parsed.scheme not in ("mqtt", "tcp", "mqtts", "ssl", "tls") or not parsed.hostname:
            raise BrokerError(f"--broker {broker!r}: use mqtt://host:port or mqtts://host:port")
        user = env.get("MQTT_DEVICE_USERNAME")
        if not user:
            raise BrokerError("MQTT_DEVICE_USERNAME is not set: run `make up`, which writes .env")
        return cls(
            parsed.hostname,
            parsed.port or (8883 if tls else 1883),
            tls,
            env.get("MQTT_CA_FILE"),
            user,
            env.get("MQTT_DEVICE_PASSWORD", ""),
            env.get("MQTT_GATEWAY_USERNAME", ""),
            env.get("MQTT_GATEWAY_PASSWORD", ""),
        )


class Conn:
    """One MQTT connection and the devices it carries."""

    __slots__ = (
        "attempt", "client", "client_id", "connected", "devices", "down_until", "failed",
        "pending", "retry_at", "sock",
    )  # fmt: skip

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.client: mqtt.Client
        self.devices: list[Link] = []
        self.connected = False
        self.failed: str | None = None
        self.pending: set[int] = set()
        self.retry_at = 0.0
        self.down_until = 0.0
        self.attempt = 0
        self.sock: socket.socket | None = None


class Link:
    """One device's outbox on its connection."""

    __slots__ = ("buffer", "conn", "device_id")

    def __init__(self, device_id: str, conn: Conn) -> None:
        self.device_id = device_id
        self.conn = conn
        self.buffer: deque[tuple[str, bytes, int]] = deque()


class MqttNetwork:
    def __init__(self, settings: MqttSettings, scenario: Scenario, seed: int) -> None:
        self.settings = settings
        self.scenario = scenario.name
        self.prefix = scenario.prefix
        self.multiplex = scenario.mqtt.multiplex
        self.buffer_max = scenario.mqtt.buffer_max
        self.keepalive = scenario.mqtt.keepalive_s
        self.rng = random.Random(f"{seed}/mqtt")
        self.sel = selectors.DefaultSelector()
        self.links: dict[str, Link] = {}
        self.conns: list[Conn] = []
        self.offline: set[Conn] = set()
        self.replay: set[Conn] = set()
        self.writers: set[Conn] = set()
        self.sent = self.dropped = self.reconnects = self.unacked = 0
        self.reboot_scale = 1.0
        """Wall seconds per simulated second of reboot downtime (1/speed; small when fast)."""
        self.closing = False
        self._next_misc = 0.0

    # ----- set-up
    def add(self, device_ids: list[str]) -> None:
        if self.multiplex:
            conns = [Conn(f"{self.prefix}-gw-{i:03d}") for i in range(self.multiplex)]
            for c in conns:
                self._client(c, self.settings.gateway_user, self.settings.gateway_password)
            for device_id in device_ids:
                conn = conns[crc32(device_id.encode()) % len(conns)]
                self.links[device_id] = Link(device_id, conn)
                conn.devices.append(self.links[device_id])
            self.conns += conns
            return
        for device_id in device_ids:
            conn = Conn(device_id)
            self._client(conn, self.settings.device_user, self.settings.device_password)
            self.links[device_id] = Link(device_id, conn)
            conn.devices.append(self.links[device_id])
            self.conns.append(conn)

    def _status(self, device_id: str, status: str) -> bytes:
        now = format_timestamp(datetime.now(UTC))
        return encode(
            {"device_id": device_id, "status": status, "timestamp": now, "scenario": self.scenario}
        )

    def _client(self, conn: Conn, user: str, password: str) -> None:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=conn.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            userdata=conn,
        )
        c.username_pw_set(user, password)
        if self.settings.tls:
            c.tls_set(ca_certs=self.settings.ca_file)
        c.will_set(
            status_topic(conn.client_id), self._status(conn.client_id, "offline"), 1, retain=True
        )
        c.max_inflight_messages_set(INFLIGHT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        conn.client = c

    def start(self, timeout: float = 120.0) -> None:
        """Connect every device; BrokerError if the broker is down or refuses the login."""
        from stack.limits import raise_nofile

        raise_nofile()
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            socket.create_connection((s.host, s.port), timeout=3).close()
        except OSError:
            raise BrokerError(
                f"Mosquitto is not reachable at {where}: start it with `make up`"
            ) from None
        for i, conn in enumerate(self.conns):
            try:
                conn.client.connect(s.host, s.port, self.keepalive)
            except OSError as exc:
                raise BrokerError(f"cannot connect to Mosquitto at {where}: {exc}") from None
            if i % 200 == 199:
                self.poll(0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.05)
            failed = [c for c in self.conns if c.failed]
            if failed:
                c = failed[0]
                raise BrokerError(
                    f"Mosquitto at {where} refused {c.client_id}: {c.failed}; check "
                    "MQTT_DEVICE_USERNAME/PASSWORD in .env (`make up` writes them)"
                )
            if self.online == len(self.conns):
                return
        raise BrokerError(f"only {self.online} of {len(self.conns)} connections came up at {where}")

    # ----- paho callbacks (run inside loop_read)
    def _on_socket_open(self, client: mqtt.Client, conn: Conn, sock: socket.socket) -> None:
        conn.sock = sock
        self.sel.register(sock, READ, conn)

    def _on_socket_close(self, client: mqtt.Client, conn: Conn, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        self.writers.discard(conn)
        conn.sock = None

    def _on_connect(self, client, conn: Conn, flags, reason, properties) -> None:
        if reason.is_failure:
            conn.failed = str(reason)
            return
        conn.connected = True
        conn.attempt = 0
        self.offline.discard(conn)
        for link in conn.devices:
            info = client.publish(
                status_topic(link.device_id), self._status(link.device_id, "online"), 1, True
            )
            conn.pending.add(info.mid)
            self.unacked += 1
        # Replay after this callback returns: paho first re-sends what was in flight.
        self.replay.add(conn)

    def _on_disconnect(self, client, conn: Conn, flags, reason, properties) -> None:
        if conn.connected:
            log.debug("%s disconnected: %s", conn.client_id, reason)
        conn.connected = False
        if self.closing:
            return
        delay = min(30.0, 0.5 * 2**conn.attempt) * self.rng.uniform(0.5, 1.0)
        conn.attempt += 1
        conn.retry_at = max(time.monotonic() + delay, conn.down_until)
        self.offline.add(conn)

    def _on_publish(self, client, conn: Conn, mid: int, reason, properties) -> None:
        if mid in conn.pending:
            conn.pending.discard(mid)
            self.unacked -= 1

    # ----- the sink interface used by devices.emit
    def send(self, device_id: str, topic: str, payload: bytes, qos: int) -> None:
        link = self.links[device_id]
        conn = link.conn
        if conn.connected and not link.buffer:
            self._publish(conn, topic, payload, qos)
            return
        link.buffer.append((topic, payload, qos))
        if len(link.buffer) > self.buffer_max:
            link.buffer.popleft()
            self.dropped += 1

    def _publish(
        self, conn: Conn, topic: str, payload: bytes, qos: int, retain: bool = False
    ) -> None:
        client = conn.client
        info = client.publish(topic, payload, qos, retain)
        self.sent += 1
        if qos:
            conn.pending.add(info.mid)
            self.unacked += 1
        if client.want_write() and conn.sock is not None and conn not in self.writers:
            self.writers.add(conn)
            self.sel.modify(conn.sock, READ | WRITE, conn)

    def reboot(self, device_id: str, downtime_s: float) -> None:
        """A power cycle: the connection drops uncleanly (the broker fires the will)."""
        if self.multiplex:
            return
        conn = self.links[device_id].conn
        conn.down_until = time.monotonic() + downtime_s * self.reboot_scale
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    # ----- the loop
    def poll(self, timeout: float) -> None:
        for key, mask in self.sel.select(timeout):
            conn: Conn = key.data
            if mask & READ:
                conn.client.loop_read()
            if mask & WRITE and conn.sock is not None:
                conn.client.loop_write()
                if not conn.client.want_write() and conn.sock is not None:
                    self.writers.discard(conn)
                    self.sel.modify(conn.sock, READ, conn)
        if self.replay:
            self._replay()
        now = time.monotonic()
        if now >= self._next_misc:
            self._next_misc = now + 5.0  # keepalive is >= 60 s; 10k clients cost ~10 ms a pass
            for conn in self.conns:
                if conn.sock is not None:
                    conn.client.loop_misc()
        if self.offline:
            self._reconnect(now)

    def _replay(self) -> None:
        for conn in list(self.replay):
            self.replay.discard(conn)
            for link in conn.devices:
                buf = link.buffer
                while buf and conn.connected:
                    topic, payload, qos = buf.popleft()
                    self._publish(conn, topic, payload, qos)

    def _reconnect(self, now: float) -> None:
        for conn in list(self.offline):
            if conn.retry_at > now or conn.sock is not None:
                continue
            self.reconnects += 1
            try:
                conn.client.reconnect()
                self.offline.discard(conn)
            except OSError:
                delay = min(30.0, 0.5 * 2**conn.attempt) * self.rng.uniform(0.5, 1.0)
                conn.attempt += 1
                conn.retry_at = now + delay

    def busy(self) -> bool:
        return self.unacked > HIGH_WATER

    @property
    def online(self) -> int:
        return sum(1 for c in self.conns if c.connected)

    @property
    def buffered(self) -> int:
        return sum(len(link.buffer) for link in self.links.values()) if self.offline else 0

    def close(self, timeout: float = 60.0) -> int:
        """Wait for every PUBACK and every buffer to drain, announce ``offline``, disconnect.

        Returns the messages still unacknowledged or buffered (0 on a clean exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.unacked or self.offline or self.replay):
            self.poll(0.05)
        left = self.unacked + sum(len(link.buffer) for link in self.links.values())
        self.closing = True
        for conn in self.conns:
            if conn.connected:
                for link in conn.devices:
                    topic = status_topic(link.device_id)
                    self._publish(conn, topic, self._status(link.device_id, "offline"), 1, True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.unacked > left:
            self.poll(0.05)
        for conn in self.conns:
            if conn.connected:
                conn.client.disconnect()
        self.poll(0.1)
        return left
