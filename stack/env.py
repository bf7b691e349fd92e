"""Writing ``.env``: ``make up`` records the local endpoints and generated credentials there.

Reading it (``.env`` overlaid by the environment) is ``cityconf.env``'s, so components read
their configuration without importing the stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cityconf.env import read_env_file
from stack.secrets import write_private

RETIRED_KEYS = frozenset({"MQTT_DEVICE_USERNAME", "MQTT_DEVICE_PASSWORD"})
"""Keys `make up` once wrote and no longer does (the shared `fleet` device account is gone:
each device has its own, `python -m stack device-credentials`); dropped when `.env` is rewritten."""


def write_env_file(path: Path, values: Mapping[str, str], header: str) -> None:
    """Rewrite ``path`` with ``values``; keys the user added by hand are kept. It holds
    passwords, so it is created owner-only (never world-readable, not even briefly)."""
    existing = {k: v for k, v in read_env_file(path).items() if k not in RETIRED_KEYS}
    existing.update(values)
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k}={v}" for k, v in existing.items()]
    write_private(path, "\n".join(lines) + "\n")
