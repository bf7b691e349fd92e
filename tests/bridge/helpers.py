"""Valid contract messages for the bridge tests, built from the contract's own field list."""

from __future__ import annotations

from typing import Any

import contract
from contract import FieldType


def sample(stream: str, device_id: str, seq: int = 1) -> dict[str, Any]:
    """A valid message for ``stream``: each field gets a value its definition allows."""
    out: dict[str, Any] = {}
    for f in contract.STREAMS[stream].fields:
        if f.choices:
            value: Any = f.choices[0]
        elif f.type is FieldType.UUID:
            value = contract.message_id("test", 1, device_id, stream, seq)
        elif f.type is FieldType.TIMESTAMP:
            value = "2026-11-23T08:00:00.000Z"
        elif f.type is FieldType.BOOL:
            value = True
        elif f.type in (FieldType.INT, FieldType.FLOAT):
            value = int(f.minimum) if f.minimum is not None else 1
            if f.type is FieldType.FLOAT:
                value = float(value) + 0.5 if f.maximum is None or value + 0.5 <= f.maximum else 0.0
        else:
            value = "x"
        out[f.name] = value
    out["device_id"] = device_id
    if "seq" in out:
        out["seq"] = seq
    return out
