"""The bridge's one frozen settings object, built at the edge from YAML and ``load_env()``.

Every problem is reported as one ``UserError`` (exit 2) naming the file, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bridge.routing import Route, RouteError, compile_routes, max_properties_bytes
from cityconf import keys
from cityconf.errors import BAD_INPUT, UserError
from cityconf.mqtt import MqttEndpoint, login

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes

# The delivery guarantee rests on these; a config file may not weaken them.
FIXED_PRODUCER = {"acks": "all", "enable.idempotence": True}
SAFE_PRODUCER = {
    "linger.ms": 5,
    "compression.type": "lz4",
    # 0 = never time out: during a Kafka outage reports wait instead of failing, and the
    # unacked backlog stays in Mosquitto's session.
    "message.timeout.ms": 0,
    "queue.buffering.max.kbytes": 262144,
}


@dataclass(frozen=True)
class BridgeMqttSettings(MqttEndpoint):
    """The broker (``MQTT_URL``, read by ``cityconf.mqtt``) and the bridge's session."""

    username: str | None
    password: str | None
    client_id: str
    subscribe: tuple[str, ...]
    share_group: str | None
    session_expiry_s: int
    receive_maximum: int
    keepalive_s: int
    reconnect_min_s: float
    reconnect_max_s: float

    @property
    def filters(self) -> tuple[str, ...]:
        """What the bridge subscribes to, shared-subscription prefix included."""
        if not self.share_group:
            return self.subscribe
        return tuple(f"$share/{self.share_group}/{f}" for f in self.subscribe)


@dataclass(frozen=True)
class Settings:
    mqtt: BridgeMqttSettings
    kafka_bootstrap: str
    producer: Mapping[str, Any]
    routes: tuple[Route, ...]
    key_template: str
    dead_letter_topic: str
    max_payload_bytes: int
    max_record_bytes: int
    """The producer's ``message.max.bytes``: every record, headers included, must fit."""
    drain_timeout_s: float
    log_interval_s: float
    metrics_port: int
    metrics_host: str
    seq_tracker_max_keys: int
    bridge_id: str
    source: str = field(default=str(DEFAULT_CONFIG))


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UserError(
            f"{path}: cannot read ({exc.strerror}); pass an existing --config", BAD_INPUT
        ) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise UserError(f"{path}:{line} is not valid YAML; fix the syntax", BAD_INPUT) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: top level must be a mapping of settings", BAD_INPUT)
    return data


class _Reader:
    """Typed access to a merged config dict; errors name the file and the dotted field."""

    def __init__(self, data: Mapping[str, Any], source: str) -> None:
        self.data, self.source = data, source

    def fail(self, name: str, fix: str) -> UserError:
        return UserError(f"{self.source}: {name}: {fix}", BAD_INPUT)

    def get(self, name: str) -> Any:
        node: Any = self.data
        for part in name.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise self.fail(name, "missing; add it (see bridge/default.yaml)")
            node = node[part]
        return node

    def number(self, name: str, kind: type, low: float, high: float | None = None) -> Any:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"expected a number, got {value!r}")
        if kind is int and not isinstance(value, int):
            raise self.fail(name, f"expected a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise self.fail(name, f"{value} is out of range; use a value {bounds}")
        return kind(value)

    def text(self, name: str, optional: bool = False) -> str | None:
        value = self.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(name, f"expected a non-empty string, got {value!r}")
        return value


def _mqtt(r: _Reader, env: Mapping[str, str], overrides: Mapping[str, Any]) -> BridgeMqttSettings:
    endpoint = MqttEndpoint.from_env(env)
    username, password = login(env, "bridge")
    subscribe = overrides.get("subscribe") or r.get("mqtt.subscribe")
    if isinstance(subscribe, str):
        subscribe = [subscribe]
    if not isinstance(subscribe, list | tuple) or not subscribe:
        raise r.fail("mqtt.subscribe", "expected a list of MQTT topic filters")
    for f in subscribe:
        if not isinstance(f, str) or not f or f.startswith("$share/"):
            raise r.fail("mqtt.subscribe", f"{f!r}: give plain filters; use share_group to share")
    group = overrides.get("share_group") or r.text("mqtt.share_group", optional=True)
    if group and any(c in group for c in "/+#"):
        raise r.fail("mqtt.share_group", f"{group!r} may not contain '/', '+' or '#'")
    client_id = overrides.get("client_id") or r.text("mqtt.client_id")
    low = r.number("mqtt.reconnect_min_s", float, 0.01)
    return BridgeMqttSettings(
        **asdict(endpoint),
        username=username,
        password=password,
        client_id=str(client_id),
        subscribe=tuple(subscribe),
        share_group=group,
        session_expiry_s=r.number("mqtt.session_expiry_s", int, 0, 2**32 - 1),
        receive_maximum=r.number("mqtt.receive_maximum", int, 1, 65535),
        keepalive_s=r.number("mqtt.keepalive_s", int, 5, 65535),
        reconnect_min_s=low,
        reconnect_max_s=r.number("mqtt.reconnect_max_s", float, low),
    )


def _producer(r: _Reader, receive_maximum: int) -> dict[str, Any]:
    given = r.get("kafka.producer") or {}
    if not isinstance(given, Mapping):
        raise r.fail("kafka.producer", "expected a mapping of librdkafka settings")
    for key, value in FIXED_PRODUCER.items():
        if key in given and str(given[key]).lower() != str(value).lower():
            raise r.fail(f"kafka.producer.{key}", f"must stay {value!r}: acks wait for Kafka")
    conf = {**SAFE_PRODUCER, **given, **FIXED_PRODUCER}
    # The producer queue must hold every message MQTT may have in flight, plus dead letters.
    conf.setdefault("queue.buffering.max.messages", max(4 * receive_maximum, 10000))
    return conf


def _record_limit(r: _Reader, producer: Mapping[str, Any], max_payload: int) -> int:
    """librdkafka's ``message.max.bytes`` (its default when unset), checked to leave room for
    user properties next to the largest payload."""
    value = producer.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES)
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise r.fail("kafka.producer.message.max.bytes", f"expected bytes, got {value!r}") from None
    if max_properties_bytes(limit, max_payload) < 64 * 1024:
        raise r.fail(
            "max_payload_bytes",
            f"{max_payload} leaves too little of kafka.producer.message.max.bytes ({limit}) "
            "for headers; lower it or raise message.max.bytes",
        )
    return limit


def load_settings(
    env: Mapping[str, str],
    config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Defaults, overlaid by ``config`` and then by command-line ``overrides``."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    data = _read_yaml(DEFAULT_CONFIG)
    source = str(DEFAULT_CONFIG)
    if config is not None:
        data = _merge(data, _read_yaml(config))
        source = str(config)
    r = _Reader(data, source)
    mqtt = _mqtt(r, env, overrides)
    bootstrap = keys.value(env, "KAFKA_BOOTSTRAP_SERVERS")
    key_template = r.text("key")
    try:
        routes = compile_routes(r.get("routes"), key_template)
    except RouteError as exc:
        raise r.fail("routes", str(exc)) from None
    metrics_port = overrides.get("metrics_port")
    if metrics_port is None:
        metrics_port = r.number("metrics_port", int, 0, 65535)
    producer = _producer(r, mqtt.receive_maximum)
    max_payload = r.number("max_payload_bytes", int, 1, 100 * 1024 * 1024)
    max_record = _record_limit(r, producer, max_payload)
    return Settings(
        mqtt=mqtt,
        kafka_bootstrap=bootstrap,
        producer=producer,
        routes=routes,
        key_template=key_template,
        dead_letter_topic=str(r.text("dead_letter_topic")),
        max_payload_bytes=max_payload,
        max_record_bytes=max_record,
        drain_timeout_s=r.number("drain_timeout_s", float, 0),
        log_interval_s=r.number("log_interval_s", float, 0),
        metrics_port=int(metrics_port),
        metrics_host=overrides.get("metrics_host") or str(r.text("metrics_host")),
        seq_tracker_max_keys=r.number("seq_tracker_max_keys", int, 1),
        bridge_id=str(overrides.get("bridge_id") or mqtt.client_id),
        source=source,
    )
