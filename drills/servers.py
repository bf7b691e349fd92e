"""What the fault drill stands on: a Mosquitto, a Kafka and an S3 server of its own.

Throwaway instances beside the shared stack, on free ports, removed afterwards: the drill kills
and restarts them, which must not disturb anybody else's run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Restartable(Protocol):
    def start(self) -> object: ...
    def stop(self) -> object: ...
    def kill(self) -> object: ...


@dataclass
class Servers:
    mosquitto: Restartable
    kafka: Restartable
    s3: Restartable
    env: dict[str, str]
    """Endpoints and credentials of these servers, overriding the shared stack's."""


@contextlib.contextmanager
def private_servers(home: Path, env: Mapping[str, str]) -> Iterator[Servers]:
    """A Mosquitto, a Kafka broker and an S3 server of the drill's own, on free ports, removed
    afterwards: the drill kills and stops them, which must not disturb the shared stack."""
    from stack.private import private_kafka, private_mosquitto, private_s3

    with (
        private_mosquitto(home / "mosquitto", env) as mqtt,
        private_kafka(home / "kafka", env) as kafka,
        private_s3(home / "s3", env) as s3,
    ):
        yield Servers(mqtt, kafka, s3, env={**mqtt.env, **kafka.env, **s3.env})
