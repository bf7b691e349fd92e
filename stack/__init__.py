"""The local stack of real servers: Mosquitto, Kafka (KRaft), versitygw S3, and Spark's jars.

``stack.up()`` installs what is missing, starts what is not running and returns the `.env`
values; ``stack.down()`` stops the servers (data stays); ``stack.status()`` probes each one.
Imported lazily, so ``from stack.env import write_env_file`` does not load the server clients.
Failures a user can fix are ``cityconf.errors.UserError``.
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
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stack' has no attribute {name!r}")
