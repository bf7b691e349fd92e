"""Per-device sequence counters that survive restarts, like a device's flash memory.

Writing a file per message would be too slow, so counters are *reserved* in blocks: the file
always holds, per device and stream, a seq no published message has reached yet. A clean exit
writes the exact counters; after a crash (kill -9) the next run starts above the reservation,
so a seq is never reused for a different message. The price is a gap of at most one block
after a crash, which the audit shows and explains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

BLOCK = 1000
FILE = "seq.json"


@dataclass
class Counter:
    last: int = 0
    """Last seq used, persisted across runs."""
    first_this_run: int = 0
    published: int = 0
    """Messages created this run (network losses included, duplicate sends not)."""


@dataclass
class SeqState:
    directory: Path | None = None
    counters: dict[tuple[str, str], Counter] = field(default_factory=dict)
    reserved: dict[tuple[str, str], int] = field(default_factory=dict)
    trips: dict[str, int] = field(default_factory=dict)
    _limit: int = 0

    @classmethod
    def open(cls, directory: Path | None) -> SeqState:
        state = cls(directory)
        if directory is None:
            return state
        path = directory / FILE
        if path.is_file():
            data = orjson.loads(path.read_bytes())
            clean = data.get("clean", False)
            for device, streams in data.get("seq", {}).items():
                for stream, entry in streams.items():
                    last = entry["last"] if clean else max(entry["last"], entry["reserved"])
                    state.counters[(device, stream)] = Counter(last=last)
            state.trips = dict(data.get("trips", {}))
        for key, counter in state.counters.items():
            state.reserved[key] = counter.last
        return state

    def prepare(self, keys: list[tuple[str, str]]) -> None:
        """Create every (device, stream) counter up front, so one file write reserves them all."""
        for key in keys:
            self.counters.setdefault(key, Counter())
        if self.directory is not None:
            self._reserve()

    def next_trip(self, vehicle_id: str) -> int:
        n = self.trips.get(vehicle_id, 0) + 1
        self.trips[vehicle_id] = n
        return n

    def next(self, device_id: str, stream: str) -> int:
        key = (device_id, stream)
        c = self.counters.get(key)
        if c is None:
            c = self.counters[key] = Counter()
        c.last += 1
        c.published += 1
        if c.first_this_run == 0:
            c.first_this_run = c.last
        if self.directory is not None and c.last > self.reserved.get(key, 0):
            self._reserve()
        return c.last

    def _reserve(self) -> None:
        for key, c in self.counters.items():
            if c.last + BLOCK // 2 > self.reserved.get(key, 0):
                self.reserved[key] = c.last + BLOCK
        self.save(clean=False)

    def save(self, clean: bool) -> None:
        if self.directory is None:
            return
        seq: dict[str, dict[str, dict[str, int]]] = {}
        for (device, stream), c in self.counters.items():
            reserved = c.last if clean else max(self.reserved.get((device, stream), 0), c.last)
            seq.setdefault(device, {})[stream] = {"last": c.last, "reserved": reserved}
        body = {"clean": clean, "seq": seq, "trips": self.trips}
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / (FILE + ".tmp")
        tmp.write_bytes(orjson.dumps(body))
        os.replace(tmp, self.directory / FILE)

    def manifest(self) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (device, stream), c in sorted(self.counters.items()):
            if c.published:
                out.setdefault(device, {})[stream] = {
                    "published": c.published,
                    "last_seq": c.last,
                    "first_seq": c.first_this_run,
                }
        return out
