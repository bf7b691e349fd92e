"""Throwaway servers on free ports in a folder of their own, for tests and fault drills.

They reuse the shared stack's installed tools (jars, binaries) but have their own config,
data, logs and pids, so stopping or killing them never disturbs the shared servers.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from stack.credentials import MQTT_USERS, Credentials
from stack.kafka import KafkaBroker, topic_partitions
from stack.layout import Layout
from stack.mosquitto import HOST, Mosquitto
from stack.process import free_port

_ENV_USER_KEYS = {
    "inspector": "MQTT_PASSWORD",
    "fleet": "MQTT_DEVICE_PASSWORD",
    "bridge": "MQTT_BRIDGE_PASSWORD",
    "gateway": "MQTT_GATEWAY_PASSWORD",
}


def _layout(home: Path, env: Mapping[str, str] | None) -> Layout:
    shared = Layout.from_env(env or {})
    return Layout.at(Path(home), tools=shared.tools).ensure()


def _credentials(env: Mapping[str, str] | None) -> Credentials:
    """The shared stack's MQTT passwords when given (clients need no new ones), else new ones."""
    generated = Credentials.generate()
    if env and all(env.get(_ENV_USER_KEYS[u]) for u in MQTT_USERS):
        mqtt = {u: env[_ENV_USER_KEYS[u]] for u in MQTT_USERS}
        return Credentials(mqtt, generated.s3_access_key, generated.s3_secret_key)
    return generated


class _Private:
    """What both private servers forward to their ``Server``: pid, log, port, stop, kill."""

    server: Mosquitto | KafkaBroker

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def pid(self) -> int | None:
        return self.server.pid

    @property
    def log_file(self) -> Path:
        return self.server.log_file

    def stop(self) -> bool:
        return self.server.stop()

    def kill(self) -> bool:
        return self.server.kill()


class PrivateMosquitto(_Private):
    """A Mosquitto broker of one's own: ``start()``, ``stop()``, ``kill()``, ``env``."""

    def __init__(self, home: Path, env: Mapping[str, str] | None = None) -> None:
        self.credentials = _credentials(env)
        self.server = Mosquitto(_layout(home, env), free_port(), free_port(), self.credentials)
        self.host = HOST

    @property
    def tls_port(self) -> int:
        return self.server.tls_port

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    @property
    def env(self) -> dict[str, str]:
        """The `.env` keys (MQTT_*) pointing at this broker."""
        return self.server.env()

    def password(self, user: str) -> str:
        return self.credentials.mqtt[user]

    def start(self) -> PrivateMosquitto:
        self.server.start()
        return self


class PrivateKafka(_Private):
    """A Kafka node of one's own with the contract topics: ``start()``, ``stop()``, ``kill()``."""

    def __init__(
        self, home: Path, env: Mapping[str, str] | None = None, heap: str = "512m"
    ) -> None:
        layout = _layout(home, env)
        self.server = KafkaBroker(layout, free_port(), free_port(), heap=heap)
        self.server.install()  # a no-op when the shared stack installed the jars

    @property
    def bootstrap(self) -> str:
        return self.server.bootstrap

    @property
    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}

    def start(self) -> PrivateKafka:
        self.server.start()
        self.server.create_topics(topic_partitions())
        return self


@contextlib.contextmanager
def private_mosquitto(
    home: Path, env: Mapping[str, str] | None = None, *, keep: bool = False
) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(home, env)
    try:
        yield broker.start()
    finally:
        broker.kill()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def private_kafka(
    home: Path, env: Mapping[str, str] | None = None, *, keep: bool = False
) -> Iterator[PrivateKafka]:
    broker = PrivateKafka(home, env)
    try:
        yield broker.start()
    finally:
        broker.kill()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
