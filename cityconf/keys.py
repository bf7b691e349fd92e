"""Every configuration key, once: its name, its default, who reads it and what it means.

Components read a key's default from here (``value(env, "S3_BUCKET")``), never from a literal
of their own, so ``cityfleet`` is the bucket, ``us-east-1`` the region and ``127.0.0.1:9092``
Kafka in one place. The README's configuration table is generated from ``KEYS``
(``python -m cityconf.docs``) and a test keeps it in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from cityconf.errors import BAD_INPUT, UserError


@dataclass(frozen=True)
class Key:
    name: str
    default: str | None
    """What a reader uses when the key is unset or empty; None: no default (unset)."""
    used_by: str
    doc: str
    shown: str | None = None
    """The default as the README shows it, where the value is generated or machine-specific."""

    @property
    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        return "unset" if self.default is None else f"`{self.default}`"


def _key(name: str, default: str | None, used_by: str, doc: str, shown: str | None = None) -> Key:
    return Key(name, default, used_by, doc, shown)


KEYS: tuple[Key, ...] = (
    # MQTT (cityconf.mqtt reads the URL and the logins)
    _key("MQTT_URL", "mqtt://127.0.0.1:1883", "devices, bridge, tests",
         "the broker: `mqtt://host:port` or `mqtts://host:port`"),
    _key("MQTT_TLS_URL", None, "TLS clients", "the broker's TLS listener",
         "`mqtts://127.0.0.1:8883`"),
    _key("MQTT_CA_FILE", None, "TLS clients", "the CA that signed the broker's certificate",
         "`.cityfleet/certs/ca.crt`"),
    _key("MQTT_USERNAME", None, "`mosquitto_sub`, the demo's counters",
         "the inspector account: reads `city/#` and `$SYS/#`", "`inspector`"),
    _key("MQTT_PASSWORD", None, "`mosquitto_sub`, the demo's counters",
         "the inspector's password", "generated"),
    _key("MQTT_BRIDGE_USERNAME", None, "bridge", "the bridge's account: reads `city/#`",
         "`bridge`"),
    _key("MQTT_BRIDGE_PASSWORD", None, "bridge", "the bridge's password", "generated"),
    _key("MQTT_GATEWAY_USERNAME", None, "multiplexed device connections, benchmarks, tests",
         "the gateway account: publishes `city/#`", "`gateway`"),
    _key("MQTT_GATEWAY_PASSWORD", None, "multiplexed device connections, benchmarks, tests",
         "the gateway's password", "generated"),
    _key("MQTT_WS_URL", None, "the live map in a browser", "Mosquitto's WebSockets listener",
         "`ws://127.0.0.1:9001`"),
    _key("MQTT_VIEWER_USERNAME", None, "the live map in a browser",
         "the read-only viewer account: reads `city/#` only, client ids `cityfleet-live-*`",
         "`viewer`"),
    _key("MQTT_VIEWER_PASSWORD", None, "the live map in a browser", "the viewer's password",
         "generated"),
    _key("MQTT_BROKER_STATE_DIR", None, "`python -m stack device-credentials`, the fleet",
         "whose broker devices are provisioned on", "`.cityfleet/`"),
    _key("MQTT_DEVICE_LOGIN", None, "devices",
         "`gateway`: devices share the trusted gateway account instead of being provisioned "
         "(docker-compose)"),
    # Kafka
    _key("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "bridge, Spark, tests",
         "Kafka's bootstrap servers, comma-separated"),
    # S3
    _key("S3_ENDPOINT_URL", None, "cameras (snapshots), Spark (s3a), tests",
         "the S3 server", "`http://127.0.0.1:9000`"),
    _key("AWS_ACCESS_KEY_ID", None, "S3 clients", "the S3 access key", "generated"),
    _key("AWS_SECRET_ACCESS_KEY", None, "S3 clients", "the S3 secret key", "generated"),
    _key("AWS_REGION", "us-east-1", "S3 clients", "the S3 region"),
    _key("S3_BUCKET", "cityfleet", "cameras, Spark, `make up`",
         "the bucket: camera snapshots and the lake root `s3a://$S3_BUCKET/`"),
    # Spark
    _key("SPARK_JARS_DIR", None, "Spark sessions",
         "Kafka connector and `hadoop-aws` jars handed to Spark",
         "`.cityfleet/tools/spark-jars`"),
    _key("SPARK_MASTER", "local[2]", "Spark sessions",
         "the same jobs on a cluster (`spark/README.md` shows `spark-submit`)"),
    _key("SPARK_UI_PORT", "4040", "Spark sessions", "the Spark UI's port"),
    _key("SPARK_UI_ENABLED", "true", "Spark sessions", "`false`: no Spark UI"),
    # One task per core: no idle tail on a small machine.
    _key("SPARK_SHUFFLE_PARTITIONS", str(os.cpu_count() or 2),
         "Spark sessions, the streaming job's `--shuffle-partitions`",
         "Spark shuffle partitions", "the cores"),
    _key("SPARK_DRIVER_MEMORY", "1g", "Spark sessions", "the driver's heap"),
    _key("SPARK_LOCAL_IP", "127.0.0.1", "Spark sessions", "the address Spark binds"),
    _key("SPARK_LOG_LEVEL", "WARN", "Spark sessions", "Spark's log level"),
    # The servers' ports (stack.settings)
    _key("MQTT_PORT", "1883", "`make up`", "Mosquitto's MQTT port"),
    _key("MQTT_TLS_PORT", "8883", "`make up`", "Mosquitto's MQTT over TLS port"),
    _key("MQTT_WS_PORT", "9001", "`make up`", "Mosquitto's WebSockets port"),
    _key("KAFKA_PORT", "9092", "`make up`", "Kafka's broker port"),
    _key("KAFKA_CONTROLLER_PORT", "9093", "`make up`", "Kafka's KRaft controller port"),
    _key("S3_PORT", "9000", "`make up`", "the S3 server's port"),
    # The cluster topology (stack.cluster)
    _key("CITYFLEET_TOPOLOGY", "single", "`make up`, `make status`, `make down`",
         "`cluster`: three Kafka brokers and a Spark standalone master with two workers"),
    _key("KAFKA_TOPIC_REPLICATION", "1", "`make up`", "copies of each topic (3 on the cluster)"),
    _key("SPARK_MASTER_PORT", "7077", "`make up TOPOLOGY=cluster`", "the Spark master's port"),
    _key("SPARK_MASTER_WEBUI_PORT", "8080", "`make up TOPOLOGY=cluster`",
         "the Spark master's web UI"),
    _key("SPARK_WORKER_WEBUI_PORT", "8081", "`make up TOPOLOGY=cluster`",
         "the first Spark worker's web UI (the next worker's is one up)"),
    # The live map
    _key("LIVE_PORT", "8088", "live map", "the page server's port (`0`: any free port)"),
    _key("LIVE_TILE_URL", None, "live map",
         "an optional background map under the routes: a `{z}/{x}/{y}` URL template"),
    _key("LIVE_TILE_ATTRIBUTION", "", "live map", "the background map's attribution", "unset"),
    # The state folder (cityconf.layout)
    _key("CITYFLEET_STATE_DIR", None, "every component",
         "where the stack keeps tools, jars, data, logs, pids, checkpoints and device state",
         "`.cityfleet/`"),
    _key("CITYFLEET_TOOLS_DIR", None, "`make up`, tests",
         "where binaries and jars are installed, shared by throwaway stacks",
         "`$CITYFLEET_STATE_DIR/tools`"),
    _key("CITYFLEET_ENV_FILE", None, "every component", "the `.env` file to read", "`.env`"),
)  # fmt: skip

BY_NAME: dict[str, Key] = {k.name: k for k in KEYS}


def default(name: str) -> str | None:
    """The table's default of ``name``; KeyError for a key the table does not know."""
    return BY_NAME[name].default


def value(env: Mapping[str, str], name: str) -> str:
    """``name`` from ``env``, or its default when unset or empty ("" when it has none)."""
    return env.get(name) or default(name) or ""


def port(env: Mapping[str, str], name: str, allow_zero: bool = False) -> int:
    """``name`` as a TCP port (``allow_zero``: 0 for any free port); a one-line UserError (exit 2)
    otherwise."""
    raw = value(env, name)
    if not raw.isdigit() or not (0 if allow_zero else 1) <= int(raw) < 65536:
        raise UserError(f"{name}={raw!r} is not a port number; set {name} to 1-65535", BAD_INPUT)
    return int(raw)


def integer(env: Mapping[str, str], name: str, low: int = 0, high: int | None = None) -> int:
    """``name`` as a whole number in ``[low, high]``; a one-line UserError (exit 2) otherwise."""
    raw = value(env, name)
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"{low}-{high}" if high is not None else f"a whole number >= {low}"
        raise UserError(f"{name}={raw!r} is not valid; set {name} to {bounds}", BAD_INPUT)
    return int(raw)
