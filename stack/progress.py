"""Live progress for `stack up`: one line per step start and end, elapsed times, a heartbeat."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator


class Progress:
    """Thread-safe step logger; prints "still working" lines for steps running over ``beat`` s."""

    def __init__(self, enabled: bool = True, beat: float = 15.0) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._running: dict[int, tuple[str, str, float]] = {}
        self._next = 0
        self._stop = threading.Event()
        self._beat = beat
        if enabled:
            threading.Thread(target=self._heartbeat, daemon=True, name="progress").start()

    def say(self, service: str, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            print(
                f"[{time.monotonic() - self.start:6.1f}s] {service:<10} {text}",
                file=sys.stderr,
                flush=True,
            )

    @contextlib.contextmanager
    def step(self, service: str, text: str) -> Iterator[None]:
        began = time.monotonic()
        with self._lock:
            key = self._next
            self._next += 1
            self._running[key] = (service, text, began)
        self.say(service, f"{text} ...")
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(key, None)
        self.say(service, f"{text}: done in {time.monotonic() - began:.1f} s")

    def close(self) -> None:
        self._stop.set()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._beat):
            with self._lock:
                running = list(self._running.values())
            for service, text, began in running:
                self.say(service, f"{text}: still working ({time.monotonic() - began:.0f} s)")
