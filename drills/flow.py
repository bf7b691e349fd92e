"""How many messages each stage holds: published on MQTT, in Kafka.

The demo and the fault drill show these live; they are cheap probes (an MQTT subscription,
Kafka watermarks), not the audit (``spark.audit``). Silver's row counts come from the Delta
log through ``spark.reader.LakeReader.silver_rows``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pyarrow.dataset as ds
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pyarrow import fs

from contract import DATA_STREAMS, MQTT_ROOT
from stack.mqtt_endpoint import MqttEndpoint

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
        endpoint = MqttEndpoint.from_env(env)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        # The inspector account (MQTT_USERNAME): it may read every topic, publish none.
        self._client.username_pw_set(env.get("MQTT_USERNAME"), env.get("MQTT_PASSWORD"))
        if endpoint.tls:
            self._client.tls_set(ca_certs=endpoint.ca_file)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._host, self._port = endpoint.host, endpoint.port

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


def committed_offsets(checkpoint_root: Path) -> dict[str, int]:
    """Per stream: Kafka records the streaming job has written to the lake and committed.

    The last entry of a query's ``commits/`` log names a batch whose ``offsets/`` entry holds
    the end offset per partition: every record before it is in the lake, and a restart
    resumes from there. Reading two small local files is cheap enough to poll, unlike
    counting rows in Parquet, which grows with the lake.
    """
    totals: dict[str, int] = {}
    for name, topic in STREAM_TOPICS.items():
        folder = checkpoint_root / topic
        batches = [int(p.name) for p in (folder / "commits").glob("[0-9]*")]
        totals[name] = _end_offsets(folder / "offsets" / str(max(batches))) if batches else 0
    return totals


def _end_offsets(path: Path) -> int:
    # Format: a version line, the batch metadata, then one line of offsets per source; a
    # query reading its topic more than once has one line per read, all alike.
    try:
        lines = path.read_text(encoding="utf-8").splitlines()[2:]
    except FileNotFoundError:
        return 0
    ends: dict[tuple[str, str], int] = {}
    for line in lines:
        for topic, partitions in json.loads(line).items():
            for partition, offset in partitions.items():
                key = (topic, partition)
                ends[key] = max(ends.get(key, 0), int(offset))
    return sum(ends.values())


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


def delta(now: Mapping[str, int], base: Mapping[str, int]) -> dict[str, int]:
    return {k: now.get(k, 0) - base.get(k, 0) for k in STREAM_TOPICS}
