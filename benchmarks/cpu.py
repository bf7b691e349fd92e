"""CPU seconds each part of a pipeline run spends, so an end-to-end rate can be read against the
machine it ran on.

On two cores the devices, Mosquitto, the bridge, Kafka, the S3 server and Spark all share the
same CPUs, so the end-to-end rate cannot exceed ``cores / (CPU seconds per message, summed over
every part)``, however well the stages overlap. ``CpuMeter`` measures that sum from the
processes themselves (user + system time of each process tree, sampled while it runs, since a
process that has exited can no longer be asked), and names the part that costs most.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from stack.process import port_listener


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def _seconds(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return None
    return t.user + t.system


JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
"""HotSpot's JIT compiler threads, as Linux truncates their names (15 characters)."""


def _jit_threads(proc: psutil.Process) -> dict[int, float]:
    """CPU seconds so far of each JIT compiler thread of a HotSpot JVM, by thread id: none for
    any other process, nor where threads have no names to read (not Linux)."""
    try:
        threads = proc.threads()
    except psutil.Error:
        return {}
    out: dict[int, float] = {}
    for thread in threads:
        try:
            name = Path(f"/proc/{proc.pid}/task/{thread.id}/comm").read_text()
        except OSError:
            continue
        if name.startswith(JIT_THREADS):
            out[thread.id] = thread.user_time + thread.system_time
    return out


@dataclass
class CpuMeter:
    """CPU seconds per named part since ``start()``; each part is one or more process trees.

    Parts added with ``jvm=True`` also count their JIT compiler threads apart (``jit()``): a
    JVM that is still compiling its hot code spends CPU that a long-running one no longer does.
    """

    parts: dict[str, list[psutil.Process]] = field(default_factory=dict)
    jvms: set[str] = field(default_factory=set)
    baseline: dict[int, float] = field(default_factory=dict)
    latest: dict[tuple[str, int], float] = field(default_factory=dict)
    jit_baseline: dict[int, float] = field(default_factory=dict)
    jit_latest: dict[tuple[str, int], float] = field(default_factory=dict)
    """By thread, not process: HotSpot starts and ends compiler threads as its queue grows and
    shrinks, and a thread that has ended keeps the CPU it was last seen with."""
    began: float = 0.0
    last: float = 0.0

    @property
    def elapsed(self) -> float:
        """Wall seconds from ``start()`` to the last ``sample()``: what ``seconds()`` covers."""
        return max(self.last - self.began, 0.0)

    def add(self, name: str, pids: Iterable[int | None], jvm: bool = False) -> None:
        if jvm:
            self.jvms.add(name)
        for pid in pids:
            if pid is None:
                continue
            try:
                self.parts.setdefault(name, []).append(psutil.Process(pid))
            except psutil.Error:
                continue

    def add_servers(self, ports: Mapping[str, int]) -> None:
        """The local servers by the ports they listen on: ``{"kafka": 9092, ...}``."""
        for name, port in ports.items():
            pid = port_listener(port)
            if pid is not None and pid > 0:
                self.add(name, [pid])

    def start(self) -> None:
        """Everything running now counts from now; a process born later counts whole. Calling it
        again starts a new window."""
        self.began = time.monotonic()
        for roots in self.parts.values():
            for root in roots:
                for proc in _tree(root):
                    seconds = _seconds(proc)
                    if seconds is not None:
                        self.baseline[proc.pid] = seconds
        for name in self.jvms:
            for root in self.parts.get(name, []):
                for proc in _tree(root):
                    self.jit_baseline.update(_jit_threads(proc))
        self.sample()

    def sample(self) -> None:
        self.last = time.monotonic()
        for name, roots in self.parts.items():
            for root in roots:
                for proc in _tree(root):
                    seconds = _seconds(proc)
                    if seconds is not None:
                        self.latest[(name, proc.pid)] = seconds
                    if name in self.jvms:
                        for tid, jit in _jit_threads(proc).items():
                            self.jit_latest[(name, tid)] = jit

    def seconds(self) -> dict[str, float]:
        return self._since(self.latest, self.baseline, self.parts)

    def jit(self) -> dict[str, float]:
        """CPU seconds the JVM parts' JIT compiler threads spent, of those ``seconds()`` counts."""
        return self._since(self.jit_latest, self.jit_baseline, self.jvms)

    @staticmethod
    def _since(
        latest: Mapping[tuple[str, int], float], baseline: Mapping[int, float], names: Iterable[str]
    ) -> dict[str, float]:
        out: dict[str, float] = {name: 0.0 for name in names}
        for (name, pid), seconds in latest.items():
            out[name] += max(seconds - baseline.get(pid, 0.0), 0.0)
        return out


def net_of_idle(
    cpu_seconds: Mapping[str, float], idle_per_s: Mapping[str, float], seconds: float
) -> dict[str, float]:
    """``cpu_seconds`` less what each part spends with no traffic over the same ``seconds``
    (brokers replicate, elect and collect garbage while idle): the share the messages cost."""
    return {k: max(v - idle_per_s.get(k, 0.0) * seconds, 0.0) for k, v in cpu_seconds.items()}


def bound(cpu_seconds: Mapping[str, float], messages: int, cores: int) -> float:
    """The highest rate in messages/s these parts could reach together on ``cores`` CPUs."""
    total = sum(cpu_seconds.values())
    return cores * messages / total if total else 0.0


def breakdown(cpu_seconds: Mapping[str, float], messages: int) -> str:
    """``spark 140 µs, bridge 60 µs, ...`` per message, costliest first."""
    ranked = sorted(cpu_seconds.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {1e6 * v / messages:,.0f} µs" for k, v in ranked if messages)


def children_seconds() -> float:
    """CPU seconds of this process's children that have exited and been waited for: read before
    and after a run of child processes, the difference is theirs, start-up included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Extrapolation:
    """What a run's CPU per message says about a machine with more cores."""

    per_core: float
    """msg/s one core gives when it runs every part: messages / CPU seconds of all parts."""
    cores: int
    linear: float
    """``per_core × cores``: every part scales linearly with its processes."""
    caps: dict[str, float]
    """msg/s at which a part that is one process (Mosquitto) fills its one core."""

    @property
    def expected(self) -> float:
        return min([self.linear, *self.caps.values()])

    def note(self) -> str:
        capped = "".join(
            f"; {name} is one process: at most {rate:,.0f} msg/s on its one core"
            for name, rate in self.caps.items()
        )
        return (
            f"{self.per_core:,.0f} msg/s per core → on {self.cores} cores ≈ "
            f"{self.expected:,.0f} msg/s (per-core rate × {self.cores}, assuming linear scaling "
            f"per process{capped})"
        )


def extrapolate(
    cpu_seconds: Mapping[str, float],
    messages: int,
    cores: int,
    one_process: Collection[str] = (),
) -> Extrapolation:
    """The rate ``cores`` CPUs would give if every part scaled linearly per process, except the
    parts in ``one_process``, which can never use more than one core."""
    caps = {
        name: messages / cpu_seconds[name] for name in one_process if cpu_seconds.get(name, 0.0) > 0
    }
    per_core = bound(cpu_seconds, messages, 1)
    return Extrapolation(per_core, cores, per_core * cores, caps)
