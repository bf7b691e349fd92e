"""MQTT for the whole fleet: one MQTT 5 connection per device (or N shared gateway ones), all
driven from one thread by a ``selectors`` loop; 10,000 connections at 1 msg/s each keep up.

Each device behaves like hardware: client id = device id, retained ``online`` status on connect,
a last will that sets ``offline``, reconnects with jittered exponential backoff, and while its
connection is down it buffers in order (bounded; drops counted) and replays on reconnect, after
re-sending what was in flight, so a subscriber sees each device's seq in order.

This module opens and ends connections with paho (socket, TLS, CONNECT with login and will,
CONNACK, reconnect backoff) and runs the loop; ``devices.session.Sessions``, a collaborator it
holds, is what happens while a connection is open.
"""

from __future__ import annotations

import contextlib
import logging
import random
import selectors
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from zlib import crc32

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cityconf.errors import UserError
from cityconf.mqtt import MqttEndpoint, login
from contract import encode, format_timestamp, status_topic
from devices.scenario import Scenario
from devices.session import READ, WRITE, Conn, Limits, Sessions

log = logging.getLogger(__name__)
CONNECTS_AHEAD = 64
"""Connections opened at start-up and still waiting for their CONNACK, at most."""
HIGH_WATER = 20_000
"""Unacknowledged QoS>0 messages across the fleet before the simulation waits for the network."""


class BrokerError(UserError):
    """The broker cannot be used: unreachable, or it refused our login (exit 1)."""


@dataclass(frozen=True)
class FleetMqttSettings(MqttEndpoint):
    """The broker (``--broker`` or ``MQTT_URL``, read by ``cityconf.mqtt``) and the login
    of multiplexing gateways. Each device logs in as itself: its login comes from provisioning
    (``stack.mosquitto.device_logins``), handed to ``MqttNetwork.add``."""

    gateway_user: str
    gateway_password: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], url: str | None = None) -> FleetMqttSettings:
        try:
            endpoint = MqttEndpoint.from_env(env, url)
        except UserError as exc:
            raise BrokerError(str(exc)) from None
        gateway_user, gateway_password = login(env, "gateway")
        return cls(
            **asdict(endpoint),
            gateway_user=gateway_user or "",
            gateway_password=gateway_password or "",
        )


class MqttNetwork:
    """The fleet's sink (``send``, ``reboot``) and the runner's network (``poll``, ``busy``)."""

    def __init__(self, settings: FleetMqttSettings, scenario: Scenario, seed: int) -> None:
        self.settings = settings
        self.scenario = scenario.name
        self.prefix = scenario.prefix
        self.multiplex = scenario.mqtt.multiplex
        self.sel = selectors.DefaultSelector()
        self.sessions = Sessions(self.sel, scenario.mqtt.buffer_max, self._paho_lost)
        self.send = self.sessions.send
        """The sink's hot path, bound once: no extra call per message."""
        self.links = self.sessions.links
        self.keepalive = scenario.mqtt.keepalive_s
        self.rng = random.Random(f"{seed}/mqtt")
        self.conns: list[Conn] = []
        self.offline: set[Conn] = set()
        self.reconnects = self.refused = 0
        self.reboot_scale = 1.0
        """Wall seconds per simulated second of reboot downtime (1/speed; small when fast)."""
        self.closing = False
        self._next_misc = 0.0
        # Keepalive is checked every few seconds; pings go out after half of it without traffic.
        self._misc_every = min(5.0, self.keepalive / 4)

    # ----- set-up
    def connections(self, device_ids: list[str]) -> dict[str, list[str]]:
        """Client id of each connection -> the devices it carries: one each, or the gateways'
        share when multiplexing (what their accounts are provisioned for)."""
        if not self.multiplex:
            return {d: [d] for d in device_ids}
        plan: dict[str, list[str]] = {
            f"{self.prefix}-gw-{i:03d}": [] for i in range(self.multiplex)
        }
        gateways = list(plan)
        for device_id in device_ids:
            plan[gateways[crc32(device_id.encode()) % len(gateways)]].append(device_id)
        return plan

    def add(
        self, device_ids: list[str], logins: Mapping[str, tuple[str, str]] | None = None
    ) -> None:
        """Connections for these devices (``connections``), each logging in with its login from
        ``logins`` (client id -> (username, password); a device's or a gateway's username is
        its client id). Gateways without one share the trusted `gateway` account."""
        if self.multiplex:
            for client_id, carried in self.connections(device_ids).items():
                conn = Conn(client_id)
                shared = (self.settings.gateway_user, self.settings.gateway_password)
                self._client(conn, *(logins or {}).get(client_id, shared))
                for device_id in carried:
                    self.sessions.attach(device_id, conn)
                self.conns.append(conn)
            return
        missing = [d for d in device_ids if not logins or d not in logins]
        if missing:
            raise BrokerError(f"no MQTT login for device {missing[0]}: provision it first")
        assert logins is not None
        for device_id in device_ids:
            conn = Conn(device_id)
            self._client(conn, *logins[device_id])
            self.sessions.attach(device_id, conn)
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
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        conn.client = c

    def start(self, timeout: float = 120.0) -> None:
        """Connect every device; BrokerError if the broker is down or refuses the login."""
        self._check_open_files()
        self._check_reachable()
        self._connect_all()
        self._await_connacks(timeout)

    def _check_open_files(self) -> None:
        from cityconf.mqtt import raise_nofile

        limit = raise_nofile()
        if limit < len(self.conns) + 100:  # plus the interpreter's own files and the state file
            raise BrokerError(
                f"{len(self.conns):,} connections need about {len(self.conns) + 100:,} open files "
                f"but the limit is {limit:,} (hard limit: `ulimit -Hn`); raise it, run shards "
                "(--shard i/n), or share connections (mqtt: {multiplex: N})"
            )

    @property
    def where(self) -> str:
        """The broker's ``host:port``, as the errors name it."""
        return f"{self.settings.host}:{self.settings.port}"

    def _check_reachable(self) -> None:
        s = self.settings
        try:
            socket.create_connection((s.host, s.port), timeout=3).close()
        except OSError:
            raise BrokerError(
                f"Mosquitto is not reachable at {self.where}: start it with `make up`"
            ) from None

    def _connect_all(self) -> None:
        """Send every connection's CONNECT, at most CONNECTS_AHEAD awaiting their CONNACK."""
        s = self.settings
        started = 0
        for i, conn in enumerate(self.conns):
            # Mosquitto listens with a backlog of 100: more connects waiting for their CONNACK
            # overflow its accept queue when it is busy, and each lost SYN costs a second or more.
            wait_until = time.monotonic() + 5
            while started - self.online - self.refused >= CONNECTS_AHEAD:
                self.poll(0.005)
                if time.monotonic() > wait_until:
                    break
            try:
                conn.client.connect(s.host, s.port, self.keepalive)
            except OSError as exc:
                if i == 0:
                    raise BrokerError(
                        f"cannot connect to Mosquitto at {self.where}: {exc}"
                    ) from None
                # A busy broker's accept queue overflows in a burst of thousands of connects:
                # that device retries like any other dropped connection.
                log.debug("%s: connect failed (%s); retrying", conn.client_id, exc)
                conn.retry_at = time.monotonic() + self.rng.uniform(0.5, 2.0)
                self.offline.add(conn)
                continue
            self._watch_paho_write(conn)
            started += 1

    def _await_connacks(self, timeout: float) -> None:
        """Until every connection is up; BrokerError at the first refusal or at ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.05)
            failed = [c for c in self.conns if c.failed]
            if failed:
                c = failed[0]
                raise BrokerError(
                    f"Mosquitto at {self.where} refused {c.client_id}: {c.failed}; is it the "
                    "broker the devices were provisioned on (MQTT_BROKER_STATE_DIR in .env)?"
                )
            if self.online == len(self.conns):
                return
        raise BrokerError(
            f"only {self.online} of {len(self.conns)} connections came up at {self.where}"
        )

    # ----- paho callbacks: the connection's opening and end
    def _on_socket_open(self, client: mqtt.Client, conn: Conn, sock: socket.socket) -> None:
        conn.sock = sock
        self.sel.register(sock, READ, conn)

    def _on_socket_close(self, client: mqtt.Client, conn: Conn, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(sock)
        self.sessions.writers.discard(conn)
        conn.sock = None

    def _on_connect(self, client, conn: Conn, flags, reason, properties) -> None:
        if reason.is_failure:
            conn.failed = str(reason)
            self.refused += 1
            return
        conn.attempt = 0
        self.offline.discard(conn)
        limits = Limits.from_connack(properties, self.keepalive)
        if 0 < limits.keepalive < self.keepalive:  # the broker's Server Keep Alive is shorter
            self._misc_every = min(self._misc_every, limits.keepalive / 4)
        self.sessions.opened(conn, limits)
        for link in conn.devices:
            online = (status_topic(link.device_id), self._status(link.device_id, "online"), 1, True)
            self.sessions.queue(link, online, front=True)
        self.sessions.drain(conn)

    def _on_disconnect(self, client, conn: Conn, flags, reason, properties) -> None:
        if conn.connected:
            log.debug("%s disconnected: %s", conn.client_id, reason)
        self.sessions.closed(conn)
        if self.closing:
            return
        delay = min(30.0, 0.5 * 2**conn.attempt) * self.rng.uniform(0.5, 1.0)
        conn.attempt += 1
        conn.retry_at = max(time.monotonic() + delay, conn.down_until)
        self.offline.add(conn)

    def _paho_lost(self, conn: Conn) -> None:
        """A session ended (its socket is shut and read to the end): paho, reading it, runs its
        disconnect path, which calls ``_on_disconnect``."""
        conn.client.loop_read()

    # ----- the rest of the sink interface used by devices.emit (``send`` is the session's)
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
        sessions = self.sessions
        sessions.now = time.monotonic()
        sessions.flush()
        for key, mask in self.sel.select(timeout):
            conn: Conn = key.data
            if not conn.connected:  # paho's part: CONNECT out, CONNACK in
                if mask & READ:
                    conn.client.loop_read()
                if mask & WRITE and conn.sock is not None and not conn.connected:
                    conn.client.loop_write()
                    self._watch_paho_write(conn)
                continue
            if mask & READ:
                sessions.read(conn)
            if mask & WRITE and conn.connected:
                sessions.write(conn)
        sessions.flush()
        now = sessions.now = time.monotonic()
        if now >= self._next_misc:
            self._next_misc = now + self._misc_every
            self._keepalive(now)
        if self.offline:
            self._reconnect(now)

    def _watch_paho_write(self, conn: Conn) -> None:
        """Before CONNACK paho writes; watch its socket for writability while it has bytes."""
        sock, want, writers = conn.sock, conn.client.want_write(), self.sessions.writers
        if sock is None or want == (conn in writers):
            return
        if want:
            writers.add(conn)
        else:
            writers.discard(conn)
        self.sel.modify(sock, READ | WRITE if want else READ, conn)

    def _keepalive(self, now: float) -> None:
        """Open sessions ping (``Sessions.keepalive``); paho keeps its connects' timeouts."""
        for conn in self.conns:
            if conn.connected:
                self.sessions.keepalive(conn, now)
            elif conn.sock is not None:
                conn.client.loop_misc()

    def _reconnect(self, now: float) -> None:
        for conn in list(self.offline):
            if conn.retry_at > now or conn.sock is not None:
                continue
            self.reconnects += 1
            try:
                conn.client.reconnect()
                self.offline.discard(conn)
                self._watch_paho_write(conn)
            except OSError:
                delay = min(30.0, 0.5 * 2**conn.attempt) * self.rng.uniform(0.5, 1.0)
                conn.attempt += 1
                conn.retry_at = now + delay

    def busy(self) -> bool:
        return self.sessions.unacked > HIGH_WATER

    @property
    def unacked(self) -> int:
        return self.sessions.unacked

    @property
    def sent(self) -> int:
        return self.sessions.sent

    @property
    def dropped(self) -> int:
        return self.sessions.dropped

    @property
    def rejected(self) -> int:
        return self.sessions.rejected

    @property
    def too_large(self) -> int:
        """Messages refused here: bigger than the broker's Maximum Packet Size."""
        return self.sessions.too_large

    @property
    def online(self) -> int:
        return self.sessions.open_count

    @property
    def buffered(self) -> int:
        """Messages held while their connection is down (or not yet past its CONNACK)."""
        return (
            sum(c.queued for c in self.conns if not c.connected)
            if self.online < len(self.conns)
            else 0
        )

    def _left(self) -> int:
        return sum(len(c.inflight) + c.queued for c in self.conns)

    def close(self, timeout: float = 60.0) -> int:
        """Wait for every PUBACK and every buffer to drain, announce ``offline``, disconnect.

        Returns the messages still unacknowledged or buffered (0 on a clean exit)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (self.unacked or self._left()):
            self.poll(0.05)
        left = self._left()
        self.closing = True
        for conn in self.conns:
            if conn.connected:
                for link in conn.devices:
                    offline = (
                        status_topic(link.device_id),
                        self._status(link.device_id, "offline"),
                    )
                    self.sessions.queue(link, (*offline, 1, True))
                self.sessions.drain(conn)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._left() > left:
            self.poll(0.05)
        for conn in self.conns:
            if conn.connected:
                self.sessions.disconnect(conn)
        deadline = time.monotonic() + 5  # the broker closes each socket on our DISCONNECT
        sessions = self.sessions
        while time.monotonic() < deadline and (sessions.dirty or sessions.writers or self.online):
            self.poll(0.05)
        return left
