"""Throwaway servers on free ports in a folder of their own, for tests and fault drills.

They reuse the shared stack's installed tools (jars, binaries) but have their own config,
data, logs and pids, so stopping or killing them never disturbs the shared servers.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from cityconf.keys import value
from cityconf.layout import Layout
from stack.accounts import mosquitto_owner
from stack.credentials import MQTT_USERS, Credentials
from stack.kafka import KafkaBroker, topic_partitions
from stack.mosquitto import HOST, Mosquitto, blocked_parent, device_logins
from stack.process import free_port
from stack.s3 import S3Server
from stack.secrets import write_private

_ENV_USER_KEYS = {
    "inspector": "MQTT_PASSWORD",
    "bridge": "MQTT_BRIDGE_PASSWORD",
    "gateway": "MQTT_GATEWAY_PASSWORD",
    "viewer": "MQTT_VIEWER_PASSWORD",
}


def _layout(home: Path, env: Mapping[str, str] | None) -> Layout:
    shared = Layout.from_env(env or {})
    return Layout.at(Path(home), tools=shared.tools).ensure()


def _credentials(layout: Layout, env: Mapping[str, str] | None) -> Credentials:
    """The shared stack's MQTT passwords when given (clients need no new ones), else new ones;
    saved in the broker's folder, where device provisioning (``MQTT_BROKER_STATE_DIR`` in
    ``env``) finds them and the device key."""
    generated = Credentials.generate()
    creds = generated
    if env and all(env.get(_ENV_USER_KEYS[u]) for u in MQTT_USERS):
        mqtt = {u: env[_ENV_USER_KEYS[u]] for u in MQTT_USERS}
        creds = Credentials(mqtt, generated.s3_access_key, generated.s3_secret_key)
    write_private(layout.config / "credentials.json", json.dumps(asdict(creds), indent=2))
    return creds


class _Private:
    """What the private servers forward to their ``Server``: pid, log, port, stop, kill."""

    server: Mosquitto | KafkaBroker | S3Server

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
        if mosquitto_owner() and blocked_parent(Path(home)):
            # Started as root, the broker drops to `mosquitto`, which cannot enter a test's
            # 0700 temporary folder: its files go to a folder of their own it can reach
            # (execute-only: nothing on the way can be listed). ``server.layout.root`` says where.
            home = Path(tempfile.mkdtemp(prefix="cityfleet-mosquitto-"))
            home.chmod(0o711)
        layout = _layout(home, env)
        self.credentials = _credentials(layout, env)
        self.server = Mosquitto(layout, free_port(), free_port(), free_port(), self.credentials)
        self.host = HOST

    @property
    def tls_port(self) -> int:
        return self.server.tls_port

    @property
    def ca_file(self) -> Path:
        return self.server.ca_file

    @property
    def ws_port(self) -> int:
        return self.server.ws_port

    @property
    def env(self) -> dict[str, str]:
        """The `.env` keys (MQTT_*) pointing at this broker, including
        ``MQTT_BROKER_STATE_DIR``: device provisioning with this env provisions this broker."""
        return self.server.env()

    def password(self, user: str) -> str:
        return self.credentials.mqtt[user]

    def device_logins(self, device_ids: list[str]) -> dict[str, str]:
        """Provision these devices here; device id -> password (username = client id = id)."""
        return device_logins(self.env, device_ids)

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


class PrivateS3(_Private):
    """An S3 server (versitygw) of one's own with one bucket: ``start()``, ``stop()``, ``env``."""

    def __init__(self, home: Path, env: Mapping[str, str] | None = None) -> None:
        keys = Credentials.generate()
        self.bucket = value(env or {}, "S3_BUCKET")
        self.server = S3Server(
            _layout(home, env), free_port(), keys.s3_access_key, keys.s3_secret_key
        )
        self.server.install()  # a no-op when the shared stack built versitygw

    @property
    def env(self) -> dict[str, str]:
        """The `.env` keys (S3_*, AWS_*) pointing at this server and its bucket."""
        return {**self.server.env(), "S3_BUCKET": self.bucket}

    def start(self) -> PrivateS3:
        self.server.start()
        self.server.ensure_bucket(self.bucket)  # already there after a restart: a no-op
        return self


_Server = TypeVar("_Server", PrivateMosquitto, PrivateKafka, PrivateS3)


@contextlib.contextmanager
def _running(server: _Server, *folders: Path, keep: bool) -> Iterator[_Server]:
    """Start ``server``; afterwards kill it and, unless ``keep``, remove its folders."""
    try:
        yield server.start()
    finally:
        server.kill()
        if not keep:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)


def private_mosquitto(
    home: Path, env: Mapping[str, str] | None = None, *, keep: bool = False
) -> contextlib.AbstractContextManager[PrivateMosquitto]:
    broker = PrivateMosquitto(home, env)
    return _running(broker, home, broker.server.layout.root, keep=keep)


def private_kafka(
    home: Path, env: Mapping[str, str] | None = None, *, keep: bool = False
) -> contextlib.AbstractContextManager[PrivateKafka]:
    return _running(PrivateKafka(home, env), home, keep=keep)


def private_s3(
    home: Path, env: Mapping[str, str] | None = None, *, keep: bool = False
) -> contextlib.AbstractContextManager[PrivateS3]:
    return _running(PrivateS3(home, env), home, keep=keep)
