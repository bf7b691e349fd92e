"""The pipeline's own processes (devices, bridge, streaming job) as children with log files.

The demo, the fault drills, the live map and the end-to-end benchmark start the same commands
the README documents, so what they prove is what a user runs. Each is a ``stack.process``
``Process`` (the one runner): its own session, so a Ctrl-C reaches only the parent, which then
stops the children in a known order (``stack.process.running``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path

from cityconf.errors import UserError
from spark.settings import query_checkpoint
from stack.process import Process

PYTHON = sys.executable


def module(name: str, argv: list[str], log_file: Path, env: Mapping[str, str]) -> Process:
    """``python -m <argv>`` as the child ``name``, its output appended to ``log_file``."""
    return Process(name, [PYTHON, *argv], log_file, env)


def devices(scenario: str, log_dir: Path, env: Mapping[str, str], *extra: str) -> Process:
    return module(
        "devices", ["-m", "devices", "--scenario", scenario, *extra], log_dir / "devices.log", env
    )


def bridge(log_dir: Path, env: Mapping[str, str], *extra: str) -> Process:
    return module("bridge", ["-m", "bridge", *extra], log_dir / "bridge.log", env)


def stream(log_dir: Path, env: Mapping[str, str], *extra: str) -> Process:
    return module("stream", ["-m", "spark.stream", *extra], log_dir / "stream.log", env)


def wait_for_query(checkpoint: Path, stream: Process, timeout: float) -> None:
    """Wait until the streaming job's query has fixed its starting offsets.

    A query started with ``--starting-offsets latest`` reads from the offsets it records
    in ``sources/0/0``; whatever is published before that file exists is not read.
    """
    offsets = Path(query_checkpoint(checkpoint)) / "sources" / "0" / "0"
    deadline = time.monotonic() + timeout
    while not offsets.is_file():
        stream.check()
        if time.monotonic() > deadline:
            raise UserError(
                f"the streaming job did not start in {timeout:.0f} s; see {stream.log_file}"
            )
        time.sleep(1)
