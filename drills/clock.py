"""Where a run's simulated clock starts, and how far it runs ahead of the wall clock.

The demo and the fault drill run their fleets on an accelerated clock; each run goes on from
where the last one of the same scenario ended, and the streaming job is told how far ahead of
Kafka's timestamps the fleet's event times may be.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.manifest import Manifest

DEVICES_TIMEOUT_S = 3600.0
"""The longest the demo lets its devices publish (wall-clock seconds)."""


class SimulatedClock:
    """Where the next run's simulated time starts: now, or after the previous run ended.

    An accelerated clock runs ahead of the wall clock; a second run starting at "now" again
    would be hours behind the first run's events, and the streaming job would record every
    row of it as late (they still land in silver). So each run starts where the last ended.
    """

    def __init__(self, path: Path, scenario: str) -> None:
        self.path = path
        self.scenario = scenario
        self.start = datetime.now(UTC).replace(microsecond=0)

    def _saved(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def next_start(self) -> str:
        ended = self._saved().get(self.scenario)
        if ended:
            self.start = max(self.start, datetime.fromisoformat(ended) + timedelta(minutes=1))
        return self.start.isoformat().replace("+00:00", "Z")

    def ended(self, manifest: Manifest) -> None:
        seconds = float(manifest.stats.get("sim_seconds", 0.0))
        saved = self._saved()
        saved[self.scenario] = (self.start + timedelta(seconds=seconds)).isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(saved, indent=2) + "\n")


def fleet_lead_s(clock: SimulatedClock, speed: float) -> float:
    """How far the fleet's event times can run ahead of Kafka's timestamps in this run.

    The streaming job quarantines a row dated more than ``--max-skew`` after its Kafka
    timestamp (a device with a bad clock). The demo's fleet is ahead on purpose: its clock
    starts where the last run ended and runs ``speed`` times faster than the wall clock, so
    its own streaming job allows that much and no more.
    """
    ahead = (clock.start - datetime.now(UTC)).total_seconds()
    return max(0.0, ahead) + speed * DEVICES_TIMEOUT_S + 300.0
