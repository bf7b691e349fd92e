"""A fast yes/no contract check for the bridge's hot path, derived from ``contract.streams``.

``contract.decode`` costs ~50 µs a message (it builds every error message), which alone would cap
one bridge near 20k msg/s. This checker answers only "certainly valid?" in a few µs. It is
stricter than the contract, never looser: when it says no, the router asks ``contract.decode``,
which names the reason and has the last word. ``tests/bridge/test_validate.py`` holds the two
to that promise on generated good and bad messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import contract
from contract import FieldType, Stream
from contract.codec import TIMESTAMP_RE

# The canonical 8-4-4-4-12 form only: uuid.UUID accepts it, and more besides (braces, urn:).
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_STRINGS = (FieldType.STRING, FieldType.UUID, FieldType.TIMESTAMP)

Check = Callable[[Any], bool]


def _field_check(f: contract.Field) -> Check:
    lo, hi, choices = f.minimum, f.maximum, f.choices
    if f.type in _STRINGS:
        pattern = {FieldType.UUID: _UUID_RE, FieldType.TIMESTAMP: TIMESTAMP_RE}.get(f.type)
        allowed = frozenset(choices) if choices is not None else None
        match = pattern.match if pattern is not None else None

        def check(v: Any) -> bool:
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
        low = float("-inf") if lo is None else lo
        high = float("inf") if hi is None else hi

        def check(v: Any) -> bool:
            return type(v) in kinds and low <= v <= high

    if not f.nullable:
        return check
    inner = check
    return lambda v: v is None or inner(v)


def compile_checker(stream: Stream) -> Callable[[dict[str, Any]], bool]:
    checks = tuple((f.name, _field_check(f)) for f in stream.fields)
    n = len(checks)
    missing = object()

    def valid(message: dict[str, Any]) -> bool:
        # Same size and every field present and right: no field missing, none unknown.
        if len(message) != n:
            return False
        for name, check in checks:
            value = message.get(name, missing)
            if value is missing or not check(value):
                return False
        return True

    return valid


def compile_checkers() -> dict[str, Callable[[dict[str, Any]], bool]]:
    return {name: compile_checker(stream) for name, stream in contract.STREAMS.items()}
