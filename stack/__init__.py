"""The local stack of real servers: Mosquitto, Kafka (KRaft), versitygw S3, and Spark's jars.

``stack.up()`` installs what is missing, starts what is not running and returns the `.env`
values; ``stack.down()`` stops the servers (data stays); ``stack.status()`` probes each one.
Imported lazily, so ``from stack.env import load_env`` does not load the server clients.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "up": "stack.core",
    "down": "stack.core",
    "status": "stack.core",
    "Services": "stack.core",
    "ServiceStatus": "stack.core",
    "StackError": "stack.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stack' has no attribute {name!r}")
