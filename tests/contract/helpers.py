"""Valid contract messages built from the contract alone, for the contract's tests."""

from __future__ import annotations

from typing import Any

from contract import FieldType, Stream

SAMPLE_BY_TYPE: dict[FieldType, Any] = {
    FieldType.STRING: "x",
    FieldType.INT: 1,
    FieldType.FLOAT: 1.5,
    FieldType.BOOL: True,
    FieldType.UUID: "3f1c8f3e-5a4b-4c1d-9e2f-c17f1ee70001",
    FieldType.TIMESTAMP: "2026-11-23T08:00:00.000Z",
}


def sample(stream: Stream, device_id: str = "car-1") -> dict[str, Any]:
    """A valid message for ``stream``, built from the contract alone."""
    msg: dict[str, Any] = {}
    for f in stream.fields:
        value = f.choices[0] if f.choices else SAMPLE_BY_TYPE[f.type]
        if f.minimum is not None and isinstance(value, int | float) and value < f.minimum:
            value = type(value)(f.minimum)
        msg[f.name] = value
    msg["device_id"] = device_id
    return msg
