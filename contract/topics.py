"""Where each stream travels: MQTT topics, Kafka topics and keys."""

from __future__ import annotations

import re

from contract.streams import STREAMS, Stream

MQTT_ROOT = "city"
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""Device ids are MQTT client ids and topic levels: no '/', '+', '#' or spaces."""


class TopicError(ValueError):
    """An MQTT topic that is not ``city/<stream>/<device_id>``."""


def mqtt_topic(stream: Stream | str, device_id: str) -> str:
    name = stream if isinstance(stream, str) else stream.name
    return f"{MQTT_ROOT}/{name}/{device_id}"


def status_topic(device_id: str) -> str:
    return mqtt_topic("status", device_id)


def parse_mqtt_topic(topic: str) -> tuple[Stream, str]:
    """Return the stream and device id named by an MQTT topic, or raise TopicError."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != MQTT_ROOT:
        raise TopicError(f"topic {topic!r} is not {MQTT_ROOT}/<stream>/<device_id>")
    stream = STREAMS.get(parts[1])
    if stream is None:
        raise TopicError(f"topic {topic!r} names unknown stream {parts[1]!r}")
    if not DEVICE_ID_RE.match(parts[2]):
        raise TopicError(f"topic {topic!r} has an invalid device id {parts[2]!r}")
    return stream, parts[2]


def kafka_key(device_id: str) -> bytes:
    """One device's messages share a key, so they share a partition and keep their order."""
    return device_id.encode()
