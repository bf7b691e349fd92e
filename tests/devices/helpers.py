"""Run a scenario in-process, as fast as possible, into a list of (topic, message) pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from devices import runner
from devices.emit import JsonLinesSink
from devices.fleet import Fleet, build
from devices.loader import load
from devices.snapshots import Uploader
from devices.state import SeqState


def simulate(
    scenario: str | Path, overrides: dict[str, Any] | None = None, state: SeqState | None = None
) -> tuple[list[bytes], Fleet]:
    """The dry run's JSON lines (bytes) and the fleet, for one scenario."""
    lines: list[bytes] = []
    loaded = load(scenario, overrides)
    fleet = build(
        loaded, JsonLinesSink(lines.append), state or SeqState(), uploader=Uploader("cityfleet")
    )
    runner.run(fleet.env, runner.NoNetwork(), fleet.until, fleet.done, None)
    fleet.hub.flush_late()
    return lines, fleet


def messages(lines: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for line in lines:
        record = orjson.loads(line)
        out.append((record["topic"], record["payload"]))
    return out
