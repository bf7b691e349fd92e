"""JSON codec and validation for contract messages.

Validation reports every field error at once, so a dead letter names all that is wrong.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from contract.streams import Field, FieldType, Stream
from contract.topics import TopicError, parse_mqtt_topic

MAX_PAYLOAD_BYTES = 64 * 1024
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_ID_NAMESPACE = uuid.UUID("6f1c8f3e-5a4b-4c1d-9e2f-c17f1ee70000")


class ContractError(ValueError):
    """A payload that breaks the contract; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def format_timestamp(when: datetime) -> str:
    """ISO 8601 UTC with milliseconds, the contract's one timestamp format."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_timestamp(text: str) -> datetime:
    if not TIMESTAMP_RE.match(text):
        raise ValueError(f"{text!r} is not ISO 8601 UTC with milliseconds")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def message_id(scenario: str, seed: int, device_id: str, stream: str, seq: int) -> str:
    """Deterministic id: the same scenario, seed, device and seq always give the same UUID."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{scenario}/{seed}/{device_id}/{stream}/{seq}"))


def encode(message: Mapping[str, Any]) -> bytes:
    return orjson.dumps(message)


def _check(field: Field, value: Any) -> str | None:
    if value is None:
        return None if field.nullable else f"{field.name}: must not be null"
    t = field.type
    if t in (FieldType.STRING, FieldType.UUID, FieldType.TIMESTAMP):
        if not isinstance(value, str):
            return f"{field.name}: expected {t.value}, got {type(value).__name__}"
        if t is FieldType.TIMESTAMP and not TIMESTAMP_RE.match(value):
            return f"{field.name}: {value!r} is not ISO 8601 UTC with milliseconds"
        if t is FieldType.UUID:
            try:
                uuid.UUID(value)
            except ValueError:
                return f"{field.name}: {value!r} is not a UUID"
        if field.choices is not None and value not in field.choices:
            return f"{field.name}: {value!r} is not one of {', '.join(field.choices)}"
        return None
    if t is FieldType.BOOL:
        return None if isinstance(value, bool) else f"{field.name}: expected bool"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{field.name}: expected {t.value}, got {type(value).__name__}"
    if t is FieldType.INT and not isinstance(value, int):
        return f"{field.name}: expected int, got float"
    if field.minimum is not None and value < field.minimum:
        return f"{field.name}: {value} is below {field.minimum}"
    if field.maximum is not None and value > field.maximum:
        return f"{field.name}: {value} is above {field.maximum}"
    return None


def validate(stream: Stream, message: Mapping[str, Any]) -> list[str]:
    """Every way ``message`` breaks ``stream``'s contract; empty when it is valid."""
    errors = [f"{f.name}: missing" for f in stream.fields if f.name not in message]
    known = stream.field_names
    errors += [f"{name}: unknown field" for name in message if name not in known]
    for f in stream.fields:
        if f.name in message:
            problem = _check(f, message[f.name])
            if problem:
                errors.append(problem)
    return errors


def decode(topic: str, payload: bytes) -> tuple[Stream, str, dict[str, Any]]:
    """Check an MQTT message against the contract: (stream, device_id, message) or ContractError."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError("oversize", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        stream, device_id = parse_mqtt_topic(topic)
    except TopicError as exc:
        raise ContractError("unknown_topic", str(exc)) from None
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ContractError("invalid_json", str(exc)) from None
    if not isinstance(message, dict):
        raise ContractError("not_an_object", f"payload is a JSON {type(message).__name__}")
    errors = validate(stream, message)
    if errors:
        raise ContractError("schema", "; ".join(errors))
    if message["device_id"] != device_id:
        raise ContractError(
            "device_mismatch", f"payload device_id {message['device_id']!r} != topic {device_id!r}"
        )
    return stream, device_id, message
