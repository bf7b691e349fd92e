"""The bridge's life cycle: connect, move messages, reconnect, drain on SIGTERM.

One thread does everything. It reads MQTT in large batches, produces each message, polls the
producer for delivery reports and acks the done prefix of the window in one write. No locks,
and an exception in any callback surfaces here instead of dying in a background thread.

Kafka errors, by kind (librdkafka retries the retriable ones itself, in order, and reports only
what it gave up on): a record Kafka refuses for good (too large, unknown topic, not authorized)
becomes a dead letter, acked like any other; a fatal producer error, a refused dead letter or a
retriable error it gave up on stops the bridge with exit code 75 after a drain. A record is
never produced twice by this process, so a device's order in Kafka is the order it arrived in.
"""

from __future__ import annotations

import logging
import random
import signal
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.inflight import AckWindow, Pending
from bridge.kafka import build_producer
from bridge.metrics import RateLog, SeqTracker, Stats, serve
from bridge.mqtt import MQTT_MAX_PACKET, build_client, connect_properties
from bridge.routing import Router
from bridge.settings import Settings
from cityconf.errors import BAD_INPUT, UserError

log = logging.getLogger(__name__)
EXIT_RESTART = 75
"""EX_TEMPFAIL: the bridge stopped on a Kafka failure a restart can cure; a supervisor restarts
it, and the broker redelivers what was not acked."""

# The producer failed as a whole (fatal error, purge): the record itself was fine.
_NOT_THE_RECORD = frozenset(
    {KafkaError._FATAL, KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT}
)
# Kafka found the record too large: its dead letter is capped.
_TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})
# Errors librdkafka retries by itself: in a report they mean it gave up (message.timeout.ms).
_RETRIABLE = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.KAFKA_STORAGE_ERROR,
    }
)


def describe(err: KafkaError) -> str:
    return f"{err.name()}: {err.str()}"


class BridgeError(UserError):
    """A failure the user must fix (a broker that refuses us, a setting that cannot work)."""


@dataclass(frozen=True)
class RunLimits:
    """Bounded runs for tests and demos; None means run until signalled."""

    idle_exit_s: float | None = None
    max_messages: int | None = None


class Bridge:
    def __init__(self, settings: Settings, limits: RunLimits | None = None) -> None:
        self.s = settings
        self.limits = limits or RunLimits()
        self.stats = Stats()
        self.seq = SeqTracker(self.stats, settings.seq_tracker_max_keys)
        self.router = Router(
            settings.routes,
            settings.key_template,
            settings.dead_letter_topic,
            settings.bridge_id,
            settings.max_payload_bytes,
            settings.max_record_bytes,
        )
        self.window = AckWindow()
        self.producer = build_producer(
            settings.kafka_bootstrap, settings.producer, settings.bridge_id
        )
        self.client = build_client(settings.mqtt, self._on_message)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self._connected = False
        self._refused_login: str | None = None
        self._stopping = False
        self._taking = True
        self._fatal: str | None = None
        self._refused: list[Pending] = []  # Kafka refused them for good: dead letters to produce
        self._warned_packet_size = False
        self._last_message = time.monotonic()
        self._first_at: float | None = None
        self._last_ack_at = 0.0

    # -- MQTT callbacks (all run in this thread, inside client.loop) --------------------------

    def _on_connect(self, client: Any, _ud: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused_login = str(reason)
            return
        self._bound_reads(client, getattr(props, "MaximumPacketSize", None))
        self._connected = True
        self.stats.mqtt_connects += 1
        log.info(
            "MQTT connected to %s:%d as %s (session present: %s)",
            self.s.mqtt.host,
            self.s.mqtt.port,
            self.s.mqtt.client_id,
            flags.session_present,
        )
        # Subscribing here, not once at start, restores the subscription after any reconnect.
        # retainHandling=1: retained status only when the subscription is new, not every time.
        options = SubscribeOptions(qos=1, retainHandling=1)
        client.subscribe([(f, options) for f in self.s.mqtt.filters])

    def _bound_reads(self, client: Any, broker_max: int | None) -> None:
        """Hold at most one packet as large as the broker accepts (its CONNACK says how large).

        The bridge declares no Maximum Packet Size of its own: the broker would silently drop
        larger messages for it. Mosquitto's ``max_packet_size`` is the one limit.
        """
        client.max_packet = broker_max or MQTT_MAX_PACKET
        if broker_max is None and not self._warned_packet_size:
            self._warned_packet_size = True
            log.warning(
                "the broker sets no maximum packet size: one message may hold up to 256 MiB of "
                "bridge memory; set max_packet_size in mosquitto.conf"
            )

    def _on_subscribe(self, _c: Any, _ud: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        for flt, code in zip(self.s.mqtt.filters, codes, strict=False):
            if code.is_failure:
                raise BridgeError(
                    f"MQTT refused the subscription to {flt!r} ({code}); the bridge account "
                    "(MQTT_BRIDGE_USERNAME) must be allowed to read it",
                    exit_code=BAD_INPUT,
                )
        log.info("MQTT subscribed to %s", ", ".join(self.s.mqtt.filters))

    def _on_disconnect(self, _c: Any, _ud: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if self._connected:
            log.warning("MQTT disconnected: %s", reason)
        self._connected = False
        # Packet ids of the lost connection are void; the broker resends what we never acked.
        self.stats.mqtt_unacked_dropped += self.window.new_connection()

    def _on_message(
        self,
        topic: bytes,
        payload: bytes,
        mid: int,
        qos: int,
        retain: int,
        dup: int,
        props: bytes | None,
    ) -> None:
        stats = self.stats
        stats.received += 1
        now = time.monotonic()
        self._last_message = now
        if self._first_at is None:
            self._first_at = now
        record = self.router.route(topic, payload, qos, retain, dup, props, int(time.time() * 1000))
        if record.reason is not None:
            stats.dead_lettered += 1
        elif record.seq is not None:
            self.seq.see(record.device_id, record.stream, record.seq)  # type: ignore[arg-type]
        self._produce(self.window.add(mid, qos, record, now))

    # -- Kafka ------------------------------------------------------------------------------

    def _produce(self, entry: Pending) -> None:
        def report(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                entry.done = True
                self.stats.produced += 1
                self.stats.observe_latency(time.monotonic() - entry.sent_at)
            else:
                self._delivery_failed(entry, err)

        while True:
            r = entry.record
            try:
                self.producer.produce(
                    r.topic, r.value, r.key, headers=r.headers, on_delivery=report
                )
                return
            except BufferError:
                # The producer queue is full (Kafka slow or away): serve reports and acks, keep
                # the MQTT connection alive, and try again. Nothing more is read meanwhile.
                self._poll(0.05)
                self._release()
                self.client.loop_misc()
                if self._stopping:
                    return  # left unacked: the broker redelivers it to the next session
            except KafkaException as exc:
                # produce() refused this record itself (too large, topic known not to exist),
                # or the producer failed for good: poll to surface a fatal error first.
                self._poll(0)
                if self._fatal is None:
                    self._refuse(entry, exc.args[0])
                if self._fatal is not None:
                    return  # left unacked: redelivered after the restart

    def _delivery_failed(self, entry: Pending, err: KafkaError) -> None:
        """A delivery report with an error: what librdkafka could not or would not retry."""
        self.stats.delivery_failed += 1
        if err.fatal() or err.code() in _NOT_THE_RECORD:
            if err.code() == KafkaError._FATAL:
                self._fail(f"the Kafka producer failed for good ({describe(err)})")
            return  # left unacked: the fatal path drains and exits
        if entry.qos and entry.epoch != self.window.epoch:
            return  # its MQTT connection is gone: the broker resends it
        if err.retriable() or err.code() in _RETRIABLE:
            # Producing it again would put it behind newer records of its device.
            self._fail(
                f"Kafka gave up on a record for {entry.record.topic} ({describe(err)}); "
                "a restart resends it in order"
            )
            return
        self._refuse(entry, err)
        if self._fatal is None:
            self._refused.append(entry)

    def _refuse(self, entry: Pending, err: KafkaError) -> None:
        """Kafka refused ``entry``'s record for good: turn it into its dead letter."""
        record = entry.record
        if record.topic == self.s.dead_letter_topic:
            self._fail(
                f"Kafka refused a dead letter ({describe(err)}); check topic "
                f"{self.s.dead_letter_topic!r} exists and takes records this large"
            )
            return
        log.warning(
            "Kafka refused a record for %s (%s): dead-lettered", record.topic, describe(err)
        )
        self.stats.kafka_refused += 1
        self.stats.dead_lettered += 1
        entry.record = self.router.refused(record, describe(err), err.code() in _TOO_LARGE)
        entry.sent_at = time.monotonic()

    def _fail(self, reason: str) -> None:
        """Stop for good: drain what Kafka confirms, ack that, exit with ``EXIT_RESTART``."""
        if self._fatal is None:
            log.error("%s: stopping", reason)
            self._fatal = reason
        self._stopping = True

    def _poll(self, timeout: float) -> None:
        try:
            self.producer.poll(timeout)
        except KafkaException as exc:  # confluent-kafka raises a fatal error from poll()
            err = exc.args[0]
            if not isinstance(err, KafkaError) or not err.fatal():
                raise
            self._fail(f"the Kafka producer failed for good ({describe(err)})")

    def _service_kafka(self, timeout: float = 0.0) -> None:
        self._poll(timeout)
        if self._refused:
            refused, self._refused = self._refused, []
            for entry in refused:
                self._produce(entry)
        self._release()

    def _release(self) -> None:
        mids = self.window.release()
        if mids:
            self.stats.acked += len(mids)
            self._last_ack_at = time.monotonic()
            self.client.ack_many(mids)
        self.stats.in_flight = len(self.window)

    # -- life cycle --------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        if self._stopping:
            raise KeyboardInterrupt
        log.info("stopping: draining (at most %.0f s)", self.s.drain_timeout_s)
        self._stopping = True

    def _connect(self) -> None:
        m = self.s.mqtt
        try:
            self.client.connect(
                m.host,
                m.port,
                keepalive=m.keepalive_s,
                clean_start=False,
                properties=connect_properties(m),
            )
        except OSError as exc:
            raise BridgeError(
                f"Mosquitto at {m.host}:{m.port} is not reachable ({exc.strerror or exc}); "
                "start the local stack with `make up`"
            ) from None
        deadline = time.monotonic() + 10
        while not self._connected and time.monotonic() < deadline:
            if self._refused_login:
                raise BridgeError(
                    f"MQTT at {m.host}:{m.port} refused the bridge login ({self._refused_login}); "
                    "check MQTT_BRIDGE_USERNAME/PASSWORD in .env (`make up` writes them)",
                    exit_code=BAD_INPUT,
                )
            if self.client.loop(0.1) not in (MQTTErrorCode.MQTT_ERR_SUCCESS,):
                break
        if not self._connected:
            raise BridgeError(f"MQTT at {m.host}:{m.port} did not answer CONNECT; is it Mosquitto?")

    def _reconnect(self, delay: float) -> float:
        """One reconnect attempt after a decorrelated-jitter pause; returns the next pause."""
        m = self.s.mqtt
        end = time.monotonic() + delay
        while time.monotonic() < end and not self._stopping:
            self._service_kafka(0.05)
        if self._stopping:
            return delay
        try:
            self.client.reconnect()
        except OSError as exc:
            log.warning("MQTT reconnect failed (%s); next try within %.1f s", exc, delay * 3)
            return min(m.reconnect_max_s, random.uniform(m.reconnect_min_s, delay * 3))
        # The run loop reads only while connected, and "connected" is set by the CONNACK, so
        # read here until it arrives; otherwise a restarted broker is never rejoined.
        deadline = time.monotonic() + 10
        while not self._connected and not self._stopping and time.monotonic() < deadline:
            if self.client.loop(0.1) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
            self._service_kafka(0)
        if not self._connected:
            log.warning("MQTT reconnect got no CONNACK; next try within %.1f s", delay * 3)
            return min(m.reconnect_max_s, random.uniform(m.reconnect_min_s, delay * 3))
        return m.reconnect_min_s

    def run(self) -> None:
        if self.s.metrics_port:
            serve(self.stats, self.s.bridge_id, self.s.metrics_port, self.s.metrics_host)
        self._connect()
        rates = RateLog(self.stats, self.s.log_interval_s, time.monotonic())
        delay = self.s.mqtt.reconnect_min_s
        limits = self.limits
        client = self.client
        while not self._stopping:
            if self._taking and self._connected:
                rc = client.loop(0.001 if len(self.window) else 0.05)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not self._connected:
                    log.warning("MQTT connection lost (%s)", rc.name)
            elif self._taking:
                delay = self._reconnect(delay)
                if self._connected:
                    delay = self.s.mqtt.reconnect_min_s
            self._service_kafka()
            now = time.monotonic()
            if now >= rates.next_at:
                rates.tick(now)
            if limits.max_messages is not None and self.stats.received >= limits.max_messages:
                self._taking = False  # stop reading; drain once Kafka confirmed them
                if not len(self.window) and not len(self.producer):
                    break
            if (
                limits.idle_exit_s is not None
                and now - self._last_message >= limits.idle_exit_s
                and not len(self.window)
            ):
                log.info("idle for %.1f s: exiting", limits.idle_exit_s)
                break
        self._drain()
        rates.tick(time.monotonic())
        if self._fatal is not None:
            raise BridgeError(
                f"{self._fatal}; exiting for a restart (what Kafka did not confirm stays unacked "
                "and is redelivered)",
                exit_code=EXIT_RESTART,
            )

    def _drain(self) -> None:
        """Stop taking messages, flush Kafka, ack what it confirmed, disconnect: bounded."""
        deadline = time.monotonic() + self.s.drain_timeout_s
        while (len(self.producer) or self._refused) and time.monotonic() < deadline:
            self._service_kafka(0.05)
            if self._connected:
                self.client.loop_write()
        self._service_kafka()
        left = len(self.producer) + len(self._refused)
        if left:
            log.warning("drain timed out: %d messages unconfirmed stay unacked (redelivered)", left)
        if self._connected:
            self.client.disconnect()
            end = time.monotonic() + 2
            while self.client.want_write() and time.monotonic() < end:
                self.client.loop_write()
                time.sleep(0.001)
        summary = self.summary()
        counters = " ".join(f"{k}={v}" for k, v in summary["counts"].items())
        log.info("stopped: %s busy_s=%.3f", counters, summary["busy_s"])

    def summary(self) -> dict[str, Any]:
        """What this run did, as ``--summary`` writes it: ``busy_s`` (first message received
        to last ack sent, the benchmarks' denominator) and the counters."""
        busy = self._last_ack_at - self._first_at if self._first_at else 0.0
        return {"busy_s": round(max(busy, 0.0), 6), "counts": self.stats.counters()}


def install_signals(bridge: Bridge) -> None:
    signal.signal(signal.SIGTERM, bridge.request_stop)
    signal.signal(signal.SIGINT, bridge.request_stop)
