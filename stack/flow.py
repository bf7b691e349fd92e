"""How many messages each stage holds: published on MQTT, in Kafka, in the silver lake.

The demo and the fault drill show these live; they are cheap probes (an MQTT subscription,
Kafka watermarks, Parquet footers), not the audit, which is Spark's completeness report.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pyarrow.dataset as ds
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pyarrow import fs

from contract import DATA_STREAMS, MQTT_ROOT

STREAM_TOPICS = {s.name: s.kafka_topic for s in DATA_STREAMS}


class MqttCounter:
    """Counts data messages per stream as the inspector account sees them on the broker.

    Only devices whose id starts with ``device_prefix`` count, so other traffic on a shared
    broker does not inflate one run's figures.
    """

    def __init__(
        self, env: Mapping[str, str], client_id: str = "cityfleet-flow", device_prefix: str = ""
    ) -> None:
        self.device_prefix = device_prefix
        url = urlparse(env.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self._client.username_pw_set(env.get("MQTT_USERNAME"), env.get("MQTT_PASSWORD"))
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 1883

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(f"{MQTT_ROOT}/+/+", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        _root, stream, device_id = msg.topic.split("/", 2)
        if stream in STREAM_TOPICS and not msg.retain and device_id.startswith(self.device_prefix):
            with self._lock:
                self.counts[stream] += 1

    def __enter__(self) -> MqttCounter:
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        return self

    def __exit__(self, *_: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: self.counts[name] for name in STREAM_TOPICS}


def kafka_offsets(bootstrap: str) -> dict[str, int]:
    """Per stream: the sum of its topic's high watermarks (messages ever written)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cityfleet-flow"})
    try:
        totals: dict[str, int] = {}
        meta = consumer.list_topics(timeout=10)
        for name, topic in STREAM_TOPICS.items():
            partitions = meta.topics.get(topic)
            total = 0
            for p in partitions.partitions if partitions else ():
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high
            totals[name] = total
        return totals
    except KafkaException:
        return dict.fromkeys(STREAM_TOPICS, 0)
    finally:
        consumer.close()


def s3_filesystem(env: Mapping[str, str]) -> fs.S3FileSystem:
    endpoint = urlparse(env["S3_ENDPOINT_URL"])
    return fs.S3FileSystem(
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme or "http",
        region=env.get("AWS_REGION", "us-east-1"),
    )


def parquet_dataset(s3: fs.S3FileSystem, path: str) -> ds.Dataset | None:
    """The Parquet files under ``bucket/path`` (names starting ``_`` or ``.`` are skipped)."""
    try:
        return ds.dataset(path, format="parquet", filesystem=s3, partitioning="hive")
    except (FileNotFoundError, OSError):
        return None


def silver_rows(env: Mapping[str, str], root: str = "") -> dict[str, int]:
    """Per stream: rows in ``s3://$S3_BUCKET/<root>silver/<topic>/``, from Parquet footers."""
    s3 = s3_filesystem(env)
    counts: dict[str, int] = {}
    for name, topic in STREAM_TOPICS.items():
        dataset = parquet_dataset(s3, f"{env['S3_BUCKET']}/{root}silver/{topic}")
        counts[name] = dataset.count_rows() if dataset is not None else 0
    return counts


def delta(now: Mapping[str, int], base: Mapping[str, int]) -> dict[str, int]:
    return {k: now.get(k, 0) - base.get(k, 0) for k in STREAM_TOPICS}
