"""From a device's reading to bytes on their way: envelope, seq, fault injection, the sink.

Simulation code calls ``Device.emit(stream, fields)`` and never sees the transport: the sink is
injected (MQTT live, JSON lines for ``--dry-run``, a list in tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import simpy

from contract import MessageIds, Stream, encode, mqtt_topic
from devices.scenario import Faults
from devices.state import SeqState


class Sink(Protocol):
    def send(self, device_id: str, topic: str, payload: bytes, qos: int) -> None: ...

    def reboot(self, device_id: str, downtime_s: float) -> None: ...


class ListSink:
    """Collects (topic, payload bytes) in memory: for tests and benchmarks."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.reboots: list[tuple[str, float]] = []

    def send(self, device_id: str, topic: str, payload: bytes, qos: int) -> None:
        self.messages.append((topic, payload))

    def reboot(self, device_id: str, downtime_s: float) -> None:
        self.reboots.append((device_id, downtime_s))


class JsonLinesSink:
    """``--dry-run``: one ``{"topic": ..., "payload": {...}}`` line per message."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self.write = write

    def send(self, device_id: str, topic: str, payload: bytes, qos: int) -> None:
        self.write(b'{"topic":"' + topic.encode() + b'","payload":' + payload + b"}\n")

    def reboot(self, device_id: str, downtime_s: float) -> None:
        pass


class Timestamps:
    """Simulated seconds to contract timestamps; the second's prefix is cached (hot path)."""

    def __init__(self, start: datetime) -> None:
        self.start_ms = int(start.timestamp() * 1000)
        self._sec = -1
        self._prefix = ""

    def format(self, sim_s: float) -> str:
        ms = self.start_ms + round(sim_s * 1000)
        sec, milli = divmod(ms, 1000)
        if sec != self._sec:
            self._sec = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{self._prefix}{milli:03d}Z"


@dataclass
class FleetStats:
    """What the simulation counted for the run's summary (the bridge's are ``bridge.metrics``)."""

    duplicates: int = 0
    network_dropped: int = 0
    late: int = 0
    reboots: int = 0


@dataclass
class Hub:
    """What all devices of one run share: clock, scenario identity, counters, sink, faults."""

    env: simpy.Environment
    scenario: str
    seed: int
    clock: Timestamps
    sink: Sink
    state: SeqState
    qos: dict[str, int]
    faults: Faults
    owns: Callable[[str], bool] = lambda _device_id: True
    year: int = 2026
    stats: FleetStats = field(default_factory=FleetStats)
    late: dict[int, Callable[[object], None]] = field(default_factory=dict)
    """Late deliveries not yet made; ``flush_late`` sends them when the run ends."""

    def flush_late(self) -> None:
        for deliver in list(self.late.values()):
            deliver(None)

    def device(self, device_id: str) -> Device:
        return Device(self, device_id)


class Device:
    """One device's identity and outbox; its ``rng`` is seeded from (seed, device id) only."""

    __slots__ = (
        "_ids",
        "_topics",
        "down_until",
        "fault_rng",
        "hub",
        "id",
        "owned",
        "rng",
        "skew_s",
    )

    def __init__(self, hub: Hub, device_id: str) -> None:
        self.hub = hub
        self.id = device_id
        self.rng = random.Random(f"{hub.seed}/{device_id}")
        self.owned = hub.owns(device_id)
        self.down_until = -1.0
        self._topics: dict[str, str] = {}
        self._ids: dict[str, MessageIds] = {}
        f = hub.faults
        self.fault_rng = random.Random(f"{hub.seed}/{device_id}/faults")
        self.skew_s = (
            self.fault_rng.uniform(-f.clock_skew_s, f.clock_skew_s) if f.clock_skew_s else 0
        )

    @property
    def up(self) -> bool:
        return self.owned and self.hub.env.now >= self.down_until

    def emit(self, stream: Stream, fields: dict[str, Any]) -> None:
        hub = self.hub
        now = hub.env.now
        if not self.owned or now < self.down_until:
            return
        name = stream.name
        seq = hub.state.next(self.id, name)
        ids = self._ids.get(name)
        if ids is None:
            ids = self._ids[name] = MessageIds(hub.scenario, hub.seed, self.id, name)
        message = {
            "id": ids(seq),
            "device_id": self.id,
            "seq": seq,
            "timestamp": hub.clock.format(now + self.skew_s),
            "scenario": hub.scenario,
        }
        message.update(fields)
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = mqtt_topic(name, self.id)
        payload = encode(message)
        qos = hub.qos[name]
        f = hub.faults
        if f.drop_prob or f.duplicate_prob or f.late_prob:
            self._faulty_send(topic, payload, qos)
        else:
            hub.sink.send(self.id, topic, payload, qos)

    def _faulty_send(self, topic: str, payload: bytes, qos: int) -> None:
        hub, f, rng = self.hub, self.hub.faults, self.fault_rng
        if f.drop_prob and rng.random() < f.drop_prob:
            hub.stats.network_dropped += 1
            return
        copies = 2 if f.duplicate_prob and rng.random() < f.duplicate_prob else 1
        hub.stats.duplicates += copies - 1
        if f.late_prob and rng.random() < f.late_prob:
            hub.stats.late += 1
            delay = rng.uniform(*f.late_delay_s)

            def deliver(_event: object) -> None:
                if hub.late.pop(id(deliver), None) is None:
                    return
                for _ in range(copies):
                    hub.sink.send(self.id, topic, payload, qos)

            hub.late[id(deliver)] = deliver
            hub.env.timeout(delay).callbacks.append(deliver)
            return
        for _ in range(copies):
            hub.sink.send(self.id, topic, payload, qos)

    def sleep(self, seconds: float):
        """Wait ``seconds``; a reboot (``Interrupt(downtime)``) silences the device meanwhile."""
        env = self.hub.env
        end = env.now + seconds
        while True:
            try:
                yield env.timeout(max(0.0, end - env.now))
                return
            except simpy.Interrupt as intr:
                downtime = float(intr.cause or 0.0)
                self.down_until = env.now + downtime
                self.hub.stats.reboots += 1
                if self.owned:
                    self.hub.sink.reboot(self.id, downtime)


def rebooter(env: simpy.Environment, device: Device, process: simpy.Process, faults: Faults):
    """Reboots ``process`` now and then (a Poisson process), as a SimPy interrupt."""
    rng = random.Random(f"{device.hub.seed}/{device.id}/reboots")
    rate_s = faults.reboot_per_hour / 3600.0
    while process.is_alive:
        yield env.timeout(rng.expovariate(rate_s))
        if process.is_alive and env.now >= device.down_until:
            process.interrupt(rng.uniform(*faults.reboot_downtime_s))
