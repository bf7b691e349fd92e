"""The one place that reads configuration from ``.env`` and the environment.

``make up`` writes endpoints and generated credentials to ``<repo>/.env``; every command reads
that file and then the environment, the environment winning. Library code takes the resulting
mapping (or a settings object built from it) and never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout (or the folder holding a shipped zip): where ``.env`` and ``.cityfleet/`` are."""


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
