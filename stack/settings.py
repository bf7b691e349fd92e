"""The stack's settings, built once from `.env` + environment: state folder, ports, bucket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stack.env import env_file
from stack.errors import StackError
from stack.layout import Layout

DEFAULT_PORTS = {
    "MQTT_PORT": 1883,
    "MQTT_TLS_PORT": 8883,
    "MQTT_WS_PORT": 9001,
    "KAFKA_PORT": 9092,
    "KAFKA_CONTROLLER_PORT": 9093,
    "S3_PORT": 9000,
}
DEFAULT_BUCKET = "cityfleet"


def _port(env: Mapping[str, str], key: str) -> int:
    raw = env.get(key) or str(DEFAULT_PORTS[key])
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{key}={raw!r} is not a port number; set {key} to 1-65535", exit_code=2)
    return int(raw)


@dataclass(frozen=True)
class StackSettings:
    layout: Layout
    mqtt_port: int
    mqtt_tls_port: int
    mqtt_ws_port: int
    kafka_port: int
    kafka_controller_port: int
    s3_port: int
    bucket: str
    env_file: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackSettings:
        settings = cls(
            layout=Layout.from_env(env),
            mqtt_port=_port(env, "MQTT_PORT"),
            mqtt_tls_port=_port(env, "MQTT_TLS_PORT"),
            mqtt_ws_port=_port(env, "MQTT_WS_PORT"),
            kafka_port=_port(env, "KAFKA_PORT"),
            kafka_controller_port=_port(env, "KAFKA_CONTROLLER_PORT"),
            s3_port=_port(env, "S3_PORT"),
            bucket=env.get("S3_BUCKET") or DEFAULT_BUCKET,
            env_file=Path(env.get("CITYFLEET_ENV_FILE") or env_file()),
        )
        ports = [settings.mqtt_port, settings.mqtt_tls_port, settings.mqtt_ws_port,
                 settings.kafka_port, settings.kafka_controller_port, settings.s3_port]  # fmt: skip
        if len(set(ports)) != len(ports):
            raise StackError(f"two services share a port ({ports}); give each its own", exit_code=2)
        return settings
