"""The pipeline's own processes (devices, bridge, streaming job) run as children with log files.

The demo, the fault drill and the end-to-end benchmark start the same commands the README
documents, so what they prove is what a user runs. Every child runs in its own session, so a
Ctrl-C reaches only the parent, which then stops the children in a known order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from stack.errors import StackError
from stack.process import log_tail

PYTHON = sys.executable


class Component:
    """One child process: ``python -m <module> <args>``, output appended to ``log_file``."""

    def __init__(
        self, name: str, argv: Sequence[str], log_file: Path, env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.argv = [PYTHON, *argv]
        self.log_file = log_file
        self.env = dict(env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Component:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n==> {time.strftime('%F %T')} {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """``kill -9`` the whole process group (a JVM child included), as a crash would."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM to the process itself (graceful drain), then SIGKILL after ``timeout``.

        Only the leader gets the SIGTERM: the streaming job's JVM is in the same group, and
        a JVM that gets SIGTERM shuts Spark down under the Python driver mid-batch.
        Whatever of the group outlives the leader is stopped after it.
        """
        if self.proc is None:
            return None
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.returncode

    def check(self) -> None:
        """Raise a StackError naming the log if the process died with an error."""
        code = self.returncode
        if code not in (None, 0):
            tail = log_tail(self.log_file)
            if len(tail) > 300:  # a JVM stack line can be pages long; the log has it all
                tail = tail[:300] + " ..."
            raise StackError(f"{self.name} exited with code {code}; see {self.log_file}: {tail}")


@contextlib.contextmanager
def running(*components: Component) -> Iterator[tuple[Component, ...]]:
    """Start components in order; on exit stop them in reverse order, whatever happened."""
    started: list[Component] = []
    try:
        for component in components:
            started.append(component.start())
        yield components
    finally:
        for component in reversed(started):
            component.stop()


def devices(scenario: str, log_dir: Path, env: Mapping[str, str], *extra: str) -> Component:
    return Component(
        "devices", ["-m", "devices", "--scenario", scenario, *extra], log_dir / "devices.log", env
    )


def bridge(log_dir: Path, env: Mapping[str, str], *extra: str) -> Component:
    return Component("bridge", ["-m", "bridge", *extra], log_dir / "bridge.log", env)


def stream(log_dir: Path, env: Mapping[str, str], *extra: str) -> Component:
    return Component("stream", ["-m", "spark.stream", *extra], log_dir / "stream.log", env)
