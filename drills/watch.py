"""The demo's live table: messages per stream at each stage, with rates, redrawn as they move."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rich.live import Live
from rich.table import Table

from drills.flow import STREAM_TOPICS

Counts = Mapping[str, int]


def covers(have: Counts, want: Counts) -> bool:
    return all(have.get(k, 0) >= v for k, v in want.items())


def counts_table(
    rows: Mapping[str, Counts], title: str, rates: Mapping[str, float] | None = None
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    for name in STREAM_TOPICS:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    if rates is not None:
        table.add_column("msg/s", justify="right")
    for stage, counts in rows.items():
        values = [counts.get(n, 0) for n in STREAM_TOPICS]
        cells = [stage, *(f"{v:,}" for v in values), f"{sum(values):,}"]
        if rates is not None:
            cells.append(f"{rates.get(stage, 0.0):,.0f}")
        table.add_row(*cells)
    return table


class Watcher:
    """Polls the stage probes and redraws one live table with counts and rates."""

    def __init__(
        self,
        live: Live,
        probes: Mapping[str, Callable[[], dict[str, int]]],
        status: Callable[[], str],
    ) -> None:
        self.live = live
        self.probes = probes
        self.status = status
        self.began = time.monotonic()
        self.rows: dict[str, dict[str, int]] = {}
        self._last: tuple[float, dict[str, int]] | None = None

    def poll(self, phase: str) -> dict[str, dict[str, int]]:
        now = time.monotonic()
        self.rows = {stage: probe() for stage, probe in self.probes.items()}
        totals = {stage: sum(c.values()) for stage, c in self.rows.items()}
        rates: dict[str, float] = {}
        if self._last is not None and now > self._last[0]:
            span = now - self._last[0]
            rates = {s: (totals[s] - self._last[1].get(s, 0)) / span for s in totals}
        self._last = (now, totals)
        title = f"{phase}  ·  {now - self.began:.0f} s  ·  {self.status()}"
        self.live.update(counts_table(self.rows, title, rates))
        return self.rows

    def until(
        self, phase: str, done: Callable[[dict[str, dict[str, int]]], bool], timeout: float
    ) -> bool:
        """Redraw every 2 s until ``done(rows)``; False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            if done(self.poll(phase)):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(2.0)
