"""Validation of contract messages: the one place that says whether a message is valid.

Every caller (devices' tests, the bridge, ``decode``) goes through ``validate``. It first runs a
check compiled once per stream (a few µs, yes or no), because naming errors costs ~50 µs a
message and would alone cap one bridge near 20k msg/s; only a message the compiled check refuses
is explained field by field. The compiled check is stricter than the explanation, never looser
(it knows only the canonical UUID form), so the explanation has the last word: a message it
finds nothing wrong with is valid. ``tests/contract/test_checks.py`` holds the two to that.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from contract.streams import STREAMS, Field, FieldType, Stream

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
# The canonical 8-4-4-4-12 form only: uuid.UUID accepts it, and more besides (braces, urn:).
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_STRINGS = (FieldType.STRING, FieldType.UUID, FieldType.TIMESTAMP)

Check = Callable[[Any], bool]
MessageCheck = Callable[[Mapping[str, Any]], bool]


def validate(stream: Stream, message: Mapping[str, Any]) -> list[str]:
    """Every way ``message`` breaks ``stream``'s contract; empty when it is valid."""
    if _compiled(stream)(message):
        return []
    return explain(stream, message)


def explain(stream: Stream, message: Mapping[str, Any]) -> list[str]:
    """The slow, complete answer: one error per missing, unknown or wrong field."""
    errors = [f"{f.name}: missing" for f in stream.fields if f.name not in message]
    known = stream.field_names
    errors += [f"{name}: unknown field" for name in message if name not in known]
    for f in stream.fields:
        if f.name in message:
            problem = _explain_field(f, message[f.name])
            if problem:
                errors.append(problem)
    return errors


def _explain_field(field: Field, value: Any) -> str | None:
    if value is None:
        return None if field.nullable else f"{field.name}: must not be null"
    t = field.type
    if t in _STRINGS:
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


def _field_check(f: Field) -> Check:
    """One field's yes/no test, with its bounds, pattern and choices bound in a closure."""
    if f.type in _STRINGS:
        pattern = {FieldType.UUID: UUID_RE, FieldType.TIMESTAMP: TIMESTAMP_RE}.get(f.type)
        allowed = frozenset(f.choices) if f.choices is not None else None
        match = pattern.match if pattern is not None else None

        def check(v: Any) -> bool:
            # type(...) is, not isinstance: JSON gives exact types, and bool is an int.
            return (
                type(v) is str
                and (match is None or match(v) is not None)
                and (allowed is None or v in allowed)
            )

    elif f.type is FieldType.BOOL:

        def check(v: Any) -> bool:
            return type(v) is bool

    else:
        kinds = (int,) if f.type is FieldType.INT else (int, float)
        low = float("-inf") if f.minimum is None else f.minimum
        high = float("inf") if f.maximum is None else f.maximum

        def check(v: Any) -> bool:
            return type(v) in kinds and low <= v <= high

    if not f.nullable:
        return check
    inner = check
    return lambda v: v is None or inner(v)


def compile_check(stream: Stream) -> MessageCheck:
    """A yes/no check of a whole message: True only when it is certainly valid."""
    checks = tuple((f.name, _field_check(f)) for f in stream.fields)
    n = len(checks)
    missing = object()

    def valid(message: Mapping[str, Any]) -> bool:
        # Same size and every field present and right: no field missing, none unknown.
        if len(message) != n:
            return False
        for name, check in checks:
            value = message.get(name, missing)
            if value is missing or not check(value):
                return False
        return True

    return valid


# Compiled once per stream. Keyed by name, but an entry serves only the very Stream it was
# compiled from, so a stream built elsewhere (a test's) gets its own check, never a namesake's.
_COMPILED: dict[str, tuple[Stream, MessageCheck]] = {
    name: (stream, compile_check(stream)) for name, stream in STREAMS.items()
}


def _compiled(stream: Stream) -> MessageCheck:
    entry = _COMPILED.get(stream.name)
    if entry is None or entry[0] is not stream:
        entry = _COMPILED[stream.name] = (stream, compile_check(stream))
    return entry[1]
