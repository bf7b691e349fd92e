"""Pure routing: one MQTT message in, one Kafka record out: a good record or a dead letter.

No I/O here. The per-topic work (route match, Kafka topic, key, constant headers) is cached for
valid topics only, so the per-message cost is ``contract.decode_payload``: one JSON parse and
the contract's check.

Every record this module makes fits the producer's ``message.max.bytes`` by construction: a
payload over ``max_payload_bytes`` or user properties over ``max_properties_bytes`` become a
*capped* dead letter (the first 4 KiB, the length and a SHA-256), never the whole thing, so
``produce()`` never refuses a record for its size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import topic_matches_sub

import contract

TEMPLATE_FIELDS = ("stream", "device_id", "stream_topic", "topic")
_QOS = [("mqtt_qos", b"0"), ("mqtt_qos", b"1"), ("mqtt_qos", b"2")]
_RETAIN = [("mqtt_retain", b"0"), ("mqtt_retain", b"1")]
_DUP = [("mqtt_dup", b"0"), ("mqtt_dup", b"1")]
TOPIC_CACHE_MAX = 100_000
"""Plans cached, valid topics only (each under ~100 bytes): about 50 MB at most."""

USER_PREFIX = "mqtt.user."
"""MQTT 5 user properties travel as ``mqtt.user.<name>``: no sender can set a bridge header."""
DLQ_HEAD_BYTES = 4096
"""What a capped dead letter keeps of an oversize payload or property block."""
RESERVED_BYTES = 256 * 1024
"""Room in a record for everything but payload and user properties: the key (<= 64 KiB, an MQTT
topic at most), ``mqtt_topic`` and ``source_topic`` (<= 64 KiB each), the bridge's other headers
and librdkafka's framing."""
_HEADER_OVERHEAD = 10  # two varint lengths per Kafka header, rounded up

Headers = list[tuple[str, bytes]]


class RouteError(ValueError):
    """A route or template in the config that cannot work."""


@dataclass(frozen=True, slots=True)
class Route:
    filter: str
    topic: str


@dataclass(slots=True)
class Record:
    """What to produce. ``reason`` is None for a good record, a dead-letter code otherwise."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    reason: str | None = None
    device_id: str | None = None
    stream: str | None = None
    seq: int | None = None


def _check_template(template: str, what: str) -> None:
    try:
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, "x"))
    except (KeyError, IndexError, ValueError) as exc:
        names = ", ".join("{" + f + "}" for f in TEMPLATE_FIELDS)
        raise RouteError(f"{what} {template!r} is not a template over {names} ({exc})") from None


def compile_routes(raw: Any, key_template: str) -> tuple[Route, ...]:
    if not isinstance(raw, list) or not raw:
        raise RouteError("expected a list of {filter: ..., topic: ...} entries")
    routes = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"filter", "topic"}:
            raise RouteError(f"entry {i}: expected exactly the keys 'filter' and 'topic'")
        flt, topic = item["filter"], item["topic"]
        if not isinstance(flt, str) or not isinstance(topic, str) or not flt or not topic:
            raise RouteError(f"entry {i}: filter and topic must be non-empty strings")
        _check_template(topic, f"entry {i}: topic")
        routes.append(Route(flt, topic))
    _check_template(key_template, "key")
    return tuple(routes)


def max_properties_bytes(max_record_bytes: int, max_payload_bytes: int) -> int:
    """The user-property budget of one record: what ``message.max.bytes`` leaves over."""
    return max_record_bytes - max_payload_bytes - RESERVED_BYTES


_FIXED_SIZE = {0x01: 1, 0x02: 4, 0x23: 2}  # payload format, message expiry, topic alias
_LENGTH_PREFIXED = {0x03, 0x08, 0x09}  # content type, response topic, correlation data
_USER_PROPERTY = 0x26
_SUBSCRIPTION_ID = 0x0B
_CONTENT_TYPE = 0x03
_CORRELATION_DATA = 0x09


def user_properties(raw: bytes) -> tuple[Headers, int]:
    """MQTT 5 user properties (and content type) from a PUBLISH's raw property bytes, as Kafka
    headers under ``USER_PREFIX``, and their size in a Kafka record.

    Its own parser, linear in the block: paho's ``Properties.unpack`` is quadratic (7.5 s of CPU
    for 40,000 empty user properties, 200 KB), which would stall the bridge. Raises ValueError on
    a malformed block.
    """
    out: Headers = []
    size, i, n = 0, 0, len(raw)

    def take(count: int) -> int:
        nonlocal i
        start, i = i, i + count
        if i > n:
            raise ValueError(f"property block truncated at byte {start} of {n}")
        return start

    def text(binary: bool = False) -> bytes:
        at = take(2)
        at = take((raw[at] << 8) | raw[at + 1])
        value = raw[at:i]
        if binary:
            return value
        if b"\0" in value:
            raise ValueError("a property string holds U+0000")
        value.decode()  # MQTT strings are UTF-8; UnicodeDecodeError is a ValueError
        return value

    while i < n:
        pid = raw[take(1)]
        if pid == _USER_PROPERTY:
            name, value = USER_PREFIX + text().decode(), text()
            out.append((name, value))
            size += len(name) + len(value) + _HEADER_OVERHEAD  # header keys are mostly ASCII
        elif pid in _FIXED_SIZE:
            take(_FIXED_SIZE[pid])
        elif pid in _LENGTH_PREFIXED:
            value = text(binary=pid == _CORRELATION_DATA)
            if pid == _CONTENT_TYPE:
                out.append(("mqtt_content_type", value))
                size += len(value) + 17 + _HEADER_OVERHEAD
        elif pid == _SUBSCRIPTION_ID:
            while raw[take(1)] & 0x80:
                pass
        else:
            raise ValueError(f"property id {pid:#04x} is not allowed in PUBLISH")
    return out, size


def _digest(what: str, data: bytes) -> Headers:
    """Length, SHA-256 and (for properties) the first bytes of something too big to carry."""
    out = [
        (f"dlq_{what}_bytes", b"%d" % len(data)),
        (f"dlq_{what}_sha256", hashlib.sha256(data).hexdigest().encode()),
    ]
    if what == "properties":
        out.append(("dlq_properties_head", data[:DLQ_HEAD_BYTES]))
    return out


@dataclass(slots=True)
class _TopicPlan:
    """Everything about a topic that does not depend on the payload."""

    kafka_topic: str | None  # None: the topic itself is a dead letter
    key: bytes | None
    headers: Headers
    stream: contract.Stream | None
    device_id: str | None
    problem: tuple[str, str] | None


class Router:
    def __init__(
        self,
        routes: Sequence[Route],
        key_template: str,
        dead_letter_topic: str,
        bridge_id: str,
        max_payload_bytes: int,
        max_record_bytes: int = 1_000_000,
    ) -> None:
        self.routes = tuple(routes)
        self.key_template = key_template
        self.dead_letter_topic = dead_letter_topic
        self.bridge_id = bridge_id.encode()
        self.max_payload_bytes = max_payload_bytes
        self.max_properties_bytes = max_properties_bytes(max_record_bytes, max_payload_bytes)
        if self.max_properties_bytes < DLQ_HEAD_BYTES:
            raise RouteError(
                f"a record of {max_record_bytes} bytes cannot hold a {max_payload_bytes}-byte "
                f"payload and {RESERVED_BYTES} bytes of headers"
            )
        self._plans: dict[bytes, _TopicPlan] = {}

    def _plan(self, topic: bytes) -> _TopicPlan:
        plan = self._plans.get(topic)
        if plan is not None:
            return plan
        text = topic.decode("utf-8", "replace")
        headers: Headers = [("mqtt_topic", topic), ("bridge_id", self.bridge_id)]
        try:
            stream, device_id = contract.parse_mqtt_topic(text)
        except contract.TopicError as exc:
            # Not cached: a sender could fill the cache with 64 KiB junk topics.
            return _TopicPlan(None, None, headers, None, None, ("unknown_topic", str(exc)))
        names = {
            "stream": stream.name,
            "device_id": device_id,
            "stream_topic": stream.kafka_topic,
            "topic": text,
        }
        plan = None
        for route in self.routes:
            if topic_matches_sub(route.filter, text):
                key = self.key_template.format(**names).encode()
                plan = _TopicPlan(
                    route.topic.format(**names), key, headers, stream, device_id, None
                )
                break
        if plan is None:
            problem = ("unknown_topic", f"topic {text!r} matches no route in the bridge config")
            plan = _TopicPlan(None, None, headers, stream, device_id, problem)
        if len(self._plans) >= TOPIC_CACHE_MAX:
            self._plans.clear()
        self._plans[topic] = plan
        return plan

    def route(
        self,
        topic: bytes,
        payload: bytes,
        qos: int,
        retain: int,
        dup: int,
        props: bytes | None,
        received_ms: int,
    ) -> Record:
        plan = self._plan(topic)
        # The bridge's own headers first and authoritative; the sender's only under USER_PREFIX.
        headers = [
            *plan.headers,
            _QOS[qos],
            _RETAIN[retain],
            _DUP[dup],
            ("received_at", b"%d" % received_ms),
        ]
        if props:
            budget = self.max_properties_bytes
            if len(props) > budget:  # too big to be worth parsing
                detail = f"{len(props)} bytes of MQTT properties > {budget}"
                return self._dead(plan, payload, headers, "oversize_properties", detail, props)
            try:
                user, size = user_properties(props)
            except Exception as exc:  # a malformed property block is the sender's fault
                return self._dead(plan, payload, headers, "bad_properties", str(exc))
            if size > budget:  # many tiny properties grow by the prefix and header framing
                detail = f"MQTT user properties take {size} bytes as Kafka headers > {budget}"
                return self._dead(plan, payload, headers, "oversize_properties", detail, props)
            headers += user
        if len(payload) > self.max_payload_bytes:
            detail = f"{len(payload)} bytes > {self.max_payload_bytes}"
            return self._dead(plan, payload, headers, "oversize", detail)
        if plan.problem is not None:
            return self._dead(plan, payload, headers, *plan.problem)
        stream = plan.stream
        assert stream is not None and plan.device_id is not None and plan.kafka_topic is not None
        try:
            message = contract.decode_payload(stream, plan.device_id, payload)
        except contract.ContractError as exc:
            return self._dead(plan, payload, headers, exc.reason, exc.detail)
        seq = message.get("seq") if stream.sequenced else None
        return Record(
            plan.kafka_topic, plan.key, payload, headers, None, plan.device_id, stream.name, seq
        )

    def refused(self, record: Record, error: str, shrink: bool) -> Record:
        """The dead letter for a good record Kafka refused for good (``error`` says why).

        ``shrink`` (Kafka found it too large): capped like an oversize payload, and without
        the sender's user properties.
        """
        headers = record.headers
        value = record.value
        extra: Headers = []
        if shrink:
            headers = [h for h in headers if not h[0].startswith(USER_PREFIX)]
            value = value[:DLQ_HEAD_BYTES]
            extra = _digest("payload", record.value)
        return Record(
            self.dead_letter_topic,
            record.key,
            value,
            [*headers, *self._dlq_headers(headers, "kafka_refused", error), *extra],
            "kafka_refused",
            record.device_id,
            record.stream,
        )

    @staticmethod
    def _dlq_headers(headers: Headers, reason: str, detail: str) -> Headers:
        return [
            ("dlq_reason", reason.encode()),
            ("dlq_detail", detail.encode("utf-8", "replace")[:1024]),
            ("source_topic", headers[0][1]),
        ]

    def _dead(
        self,
        plan: _TopicPlan,
        payload: bytes,
        headers: Headers,
        reason: str,
        detail: str,
        dropped_props: bytes | None = None,
    ) -> Record:
        headers += self._dlq_headers(headers, reason, detail)
        value = payload
        if len(payload) > self.max_payload_bytes:
            value = payload[:DLQ_HEAD_BYTES]
            headers += _digest("payload", payload)
        if dropped_props is not None:
            headers += _digest("properties", dropped_props)
        stream = plan.stream.name if plan.stream else None
        return Record(
            self.dead_letter_topic, plan.key, value, headers, reason, plan.device_id, stream
        )
