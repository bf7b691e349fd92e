"""Drive a fleet's SimPy environment: as fast as possible, or paced against the wall clock.

Both clocks step the same ``simpy.Environment``; the choice is the runner's, never the
devices'. The real-time runner does what ``simpy.rt.RealtimeEnvironment`` does, except that
it spends the wait serving the network (one selectors loop) instead of sleeping in
``time.sleep``, which would starve thousands of MQTT sockets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import simpy


class Network(Protocol):
    def poll(self, timeout: float) -> None: ...

    def busy(self) -> bool: ...


class NoNetwork:
    """Dry runs and tests: nothing to serve, waiting is sleeping."""

    def poll(self, timeout: float) -> None:
        if timeout > 0:
            time.sleep(timeout)

    def busy(self) -> bool:
        return False


@dataclass
class RunResult:
    sim_seconds: float
    wall_seconds: float
    steps: int
    max_lag_s: float
    """Real-time clock only: how far the simulation fell behind the wall clock at worst."""
    stopped: bool


def run(
    env: simpy.Environment,
    network: Network,
    until: float | None,
    done: simpy.Event | None,
    speed: float | None,
    tick: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunResult:
    """Step ``env`` until ``until`` (simulated s), ``done`` fires, or ``should_stop()``.

    ``speed`` None: as fast as possible; else simulated seconds per wall second.
    ``tick(sim_now)`` is called about twice a second for progress output.
    """
    wall0 = time.monotonic()
    sim0 = env.now
    next_tick = wall0 + 0.5
    steps, max_lag, stopped = 0, 0.0, False
    limit = math.inf if until is None else until
    while True:
        if done is not None and done.processed:
            break
        t = env.peek()
        if t > limit or t == math.inf:
            break
        now = time.monotonic()
        if speed is not None:
            due = wall0 + (t - sim0) / speed
            if due > now:
                network.poll(min(due - now, 0.05))
                if now >= next_tick:
                    next_tick = now + 0.5
                    if tick:
                        tick(env.now)
                    if should_stop():
                        stopped = True
                        break
                continue
            max_lag = max(max_lag, now - due)
        env.step()
        steps += 1
        if steps & 127 == 0:
            network.poll(0)
            while network.busy():
                network.poll(0.005)
            if now >= next_tick:
                next_tick = now + 0.5
                if tick:
                    tick(env.now)
                if should_stop():
                    stopped = True
                    break
    end = env.now if until is None or stopped or (done is not None and done.processed) else until
    return RunResult(end, time.monotonic() - wall0, steps, max_lag, stopped)
