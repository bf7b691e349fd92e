"""The stack's settings, built once from `.env` + environment: state folder, ports, bucket."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cityconf.env import env_file
from cityconf.errors import UserError
from cityconf.keys import default, port, value
from cityconf.layout import Layout

PORT_KEYS = ("MQTT_PORT", "MQTT_TLS_PORT", "MQTT_WS_PORT", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT",
             "S3_PORT")  # fmt: skip
DEFAULT_PORTS = {key: int(default(key) or 0) for key in PORT_KEYS}


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
            mqtt_port=port(env, "MQTT_PORT"),
            mqtt_tls_port=port(env, "MQTT_TLS_PORT"),
            mqtt_ws_port=port(env, "MQTT_WS_PORT"),
            kafka_port=port(env, "KAFKA_PORT"),
            kafka_controller_port=port(env, "KAFKA_CONTROLLER_PORT"),
            s3_port=port(env, "S3_PORT"),
            bucket=value(env, "S3_BUCKET"),
            env_file=Path(env.get("CITYFLEET_ENV_FILE") or env_file()),
        )
        ports = [settings.mqtt_port, settings.mqtt_tls_port, settings.mqtt_ws_port,
                 settings.kafka_port, settings.kafka_controller_port, settings.s3_port]  # fmt: skip
        if len(set(ports)) != len(ports):
            raise UserError(f"two services share a port ({ports}); give each its own", exit_code=2)
        return settings
