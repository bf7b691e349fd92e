"""Pure routing: one MQTT message in, one Kafka record out: a good record or a dead letter.

No I/O here. The per-topic work (route match, Kafka topic, key, constant headers) is cached, so
the per-message cost is ``contract.decode_payload``: one JSON parse and the contract's check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import topic_matches_sub
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import contract

TEMPLATE_FIELDS = ("stream", "device_id", "stream_topic", "topic")
_QOS = [("mqtt_qos", b"0"), ("mqtt_qos", b"1"), ("mqtt_qos", b"2")]
_RETAIN = [("mqtt_retain", b"0"), ("mqtt_retain", b"1")]
_DUP = [("mqtt_dup", b"0"), ("mqtt_dup", b"1")]
_TOPIC_CACHE_MAX = 100_000

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


def user_properties(raw: bytes) -> Headers:
    """MQTT 5 user properties (and content type) from a PUBLISH's raw property bytes."""
    length, n = bytearray(), len(raw)
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    props = Properties(PacketTypes.PUBLISH)
    props.unpack(bytes(length) + raw)
    out = [(k, v.encode()) for k, v in getattr(props, "UserProperty", [])]
    if hasattr(props, "ContentType"):
        out.append(("mqtt_content_type", props.ContentType.encode()))
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
    ) -> None:
        self.routes = tuple(routes)
        self.key_template = key_template
        self.dead_letter_topic = dead_letter_topic
        self.bridge_id = bridge_id.encode()
        self.max_payload_bytes = max_payload_bytes
        self._plans: dict[bytes, _TopicPlan] = {}

    def _plan(self, topic: bytes) -> _TopicPlan:
        text = topic.decode("utf-8", "replace")
        headers: Headers = [("mqtt_topic", topic), ("bridge_id", self.bridge_id)]
        try:
            stream, device_id = contract.parse_mqtt_topic(text)
        except contract.TopicError as exc:
            return _TopicPlan(None, None, headers, None, None, ("unknown_topic", str(exc)))
        names = {
            "stream": stream.name,
            "device_id": device_id,
            "stream_topic": stream.kafka_topic,
            "topic": text,
        }
        for route in self.routes:
            if topic_matches_sub(route.filter, text):
                key = self.key_template.format(**names).encode()
                return _TopicPlan(
                    route.topic.format(**names), key, headers, stream, device_id, None
                )
        problem = ("unknown_topic", f"topic {text!r} matches no route in the bridge config")
        return _TopicPlan(None, None, headers, stream, device_id, problem)

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
        plan = self._plans.get(topic)
        if plan is None:
            if len(self._plans) >= _TOPIC_CACHE_MAX:
                self._plans.clear()
            plan = self._plans[topic] = self._plan(topic)
        headers = [
            *plan.headers,
            _QOS[qos],
            _RETAIN[retain],
            _DUP[dup],
            ("received_at", b"%d" % received_ms),
        ]
        if props:
            try:
                headers += user_properties(props)
            except Exception as exc:  # a malformed property block is the sender's fault
                return self._dead(plan, payload, headers, "bad_properties", str(exc))
        if plan.problem is not None:
            return self._dead(plan, payload, headers, *plan.problem)
        if len(payload) > self.max_payload_bytes:
            detail = f"{len(payload)} bytes > {self.max_payload_bytes}"
            return self._dead(plan, payload, headers, "oversize", detail)
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

    def _dead(
        self, plan: _TopicPlan, payload: bytes, headers: Headers, reason: str, detail: str
    ) -> Record:
        headers += [
            ("dlq_reason", reason.encode()),
            ("dlq_detail", detail.encode("utf-8", "replace")[:1024]),
            ("source_topic", headers[0][1]),
        ]
        stream = plan.stream.name if plan.stream else None
        return Record(
            self.dead_letter_topic, plan.key, payload, headers, reason, plan.device_id, stream
        )
