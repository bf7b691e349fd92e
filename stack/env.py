"""The one place that reads configuration from ``.env`` and the environment.

``make up`` writes endpoints and generated credentials to ``<repo>/.env``; every command reads
that file and then the environment, the environment winning. Library code takes the resulting
mapping (or a settings object built from it) and never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from stack.secrets import write_private

REPO_ROOT = Path(__file__).resolve().parents[1]
RETIRED_KEYS = frozenset({"MQTT_DEVICE_USERNAME", "MQTT_DEVICE_PASSWORD"})
"""Keys `make up` once wrote and no longer does (the shared `fleet` device account is gone:
each device has its own, `python -m stack device-credentials`); dropped when `.env` is rewritten."""


def env_file() -> Path:
    return Path(os.environ.get("CITYFLEET_ENV_FILE", REPO_ROOT / ".env"))


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=value`` lines; blank lines and ``#`` comments are skipped, quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def load_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``.env`` overlaid by the environment, overlaid by explicit ``overrides``."""
    merged = read_env_file(env_file())
    merged.update(os.environ)
    if overrides:
        merged.update(overrides)
    return merged


def write_env_file(path: Path, values: Mapping[str, str], header: str) -> None:
    """Rewrite ``path`` with ``values``; keys the user added by hand are kept. It holds
    passwords, so it is created owner-only (never world-readable, not even briefly)."""
    existing = {k: v for k, v in read_env_file(path).items() if k not in RETIRED_KEYS}
    existing.update(values)
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k}={v}" for k, v in existing.items()]
    write_private(path, "\n".join(lines) + "\n")
