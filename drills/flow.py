"""How many messages each stage holds: published on MQTT, in Kafka, in silver.

The demo, the fault drills and the benchmarks show or wait on these; they are cheap probes (an
MQTT subscription, Kafka watermarks, the Delta log's row counts through
``spark.reader.LakeReader.silver_rows``), not the audit (``spark.audit``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pyarrow import fs

from cityconf.errors import UserError
from cityconf.keys import value
from cityconf.mqtt import MqttEndpoint
from contract import DATA_STREAMS, MQTT_ROOT
from spark.lake import default_root
from spark.reader import LakeReader

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


def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[str, dict[str, int]]:
    """Each of ``topics`` that exists → its partitions' high watermarks (where the next message
    goes), keyed as Spark's ``startingOffsets`` JSON is: ``{"topic": {"0": 42}}``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cityfleet-flow"})
    try:
        meta = consumer.list_topics(timeout=10)
        ends: dict[str, dict[str, int]] = {}
        for topic in topics:
            found = meta.topics.get(topic)
            for p in found.partitions if found else ():
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends.setdefault(topic, {})[str(p)] = high
        return ends
    finally:
        consumer.close()


def kafka_offsets(bootstrap: str) -> dict[str, int]:
    """Per stream: the sum of its topic's high watermarks (messages ever written)."""
    try:
        ends = end_offsets(bootstrap, STREAM_TOPICS.values())
    except KafkaException:
        return dict.fromkeys(STREAM_TOPICS, 0)
    return {name: sum(ends.get(topic, {}).values()) for name, topic in STREAM_TOPICS.items()}


def kafka_total(bootstrap: str) -> int:
    """Messages ever written to every stream topic."""
    return sum(kafka_offsets(bootstrap).values())


def s3_filesystem(env: Mapping[str, str]) -> fs.S3FileSystem:
    endpoint = urlparse(env["S3_ENDPOINT_URL"])
    return fs.S3FileSystem(
        access_key=env["AWS_ACCESS_KEY_ID"],
        secret_key=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme or "http",
        region=value(env, "AWS_REGION"),
    )


def lake_root(env: Mapping[str, str], prefix: str) -> str:
    """A lake root of its own under the bucket's (``s3a://$S3_BUCKET/<prefix>/``), for a run
    that must not mix with the shared lake: a drill, a benchmark."""
    root = default_root(env)
    if root is None:
        raise UserError("S3_BUCKET is not set: run `make up` (it writes .env)", exit_code=2)
    return f"{root}{prefix.strip('/')}/"


def silver_total(reader: LakeReader) -> int:
    """Rows in silver now, from the Delta log's statistics (no data read)."""
    return sum(reader.silver_rows().values())


def wait_for_rows(reader: LakeReader, total: int, timeout: float) -> int:
    """Poll silver until it holds ``total`` rows or ``timeout`` passes; the rows it holds."""
    deadline = time.monotonic() + timeout
    while (rows := silver_total(reader)) < total and time.monotonic() < deadline:
        time.sleep(2)
    return rows


def count_or_down(probe: Callable[[], int]) -> int:
    """``probe()`` as a fault's progress count: -1 while what it asks is down (a drill's fault
    may be exactly that server) instead of an exception."""
    try:
        return probe()
    except Exception:  # the broker or the S3 server may be the thing that is down
        return -1


def delta(now: Mapping[str, int], base: Mapping[str, int]) -> dict[str, int]:
    return {k: now.get(k, 0) - base.get(k, 0) for k in STREAM_TOPICS}
