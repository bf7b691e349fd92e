"""Tools for proving and measuring the bridge against real servers (tests and benchmarks).

Publish contract messages as the gateway account, run ``python -m bridge`` as a child process
(the one runner, ``stack.process.Process``), read its JSON summary, and read back what reached
Kafka since a starting watermark, with its headers. Test tooling: kept out of ``bridge/``, so
the production package ships without it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as paho
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityconf.env import REPO_ROOT
from stack.process import Process

Message = tuple[str, bytes]  # MQTT topic, payload
PropsMessage = tuple[str, bytes, Properties | None]  # ... and MQTT 5 PUBLISH properties
PUBLISH_WINDOW = 10_000


def end_session(env: Mapping[str, str], client_id: str) -> None:
    """Make the broker forget a bridge session and the backlog it holds for it.

    A bridge's session outlives the bridge (a day, ``session_expiry_s``) and keeps queueing what
    its filters match; a benchmark's bridges are done with theirs, and left alone every later
    benchmark's traffic would pile up in them (and in the broker's persistence file, which it
    rewrites whole on each save).
    """
    url = urlsplit(env["MQTT_URL"])
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
    )
    client.username_pw_set(env["MQTT_BRIDGE_USERNAME"], env["MQTT_BRIDGE_PASSWORD"])
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    host, port = url.hostname or "127.0.0.1", url.port or 1883
    client.connect(host, port, clean_start=True, properties=props)
    client.loop_start()
    try:
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()


SHORT_SESSION_S = 300


def short_session(run_dir: Path, expiry_s: int = SHORT_SESSION_S) -> list[str]:
    """Bridge arguments for a session the broker forgets ``expiry_s`` after the bridge is gone.

    A benchmark ends its bridge's session itself (``end_session``), but a benchmark killed
    before that would leave a session of the bridge's default expiry (a day) queueing every
    message later runs publish, and Mosquitto rewrites its whole persistence file on each save.
    Measured on the 2-core VM (2026-12-03): one killed end-to-end run's session held 575,000
    messages (211 MB) an hour later, and Mosquitto's CPU a message in the next end-to-end runs
    was 93-135 µs instead of 23-25.
    """
    config = run_dir / "bridge-session.yaml"
    config.write_text(f"mqtt:\n  session_expiry_s: {expiry_s}\n")
    return ["--config", str(config)]


def publish(
    env: Mapping[str, str], messages: Iterable[Message | PropsMessage], qos: int = 1
) -> int:
    """Publish with the gateway account and wait until the broker acked every QoS 1 message."""
    url = urlsplit(env["MQTT_URL"])
    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2,
        client_id=f"harness-{os.getpid()}-{time.monotonic_ns()}",
        protocol=paho.MQTTv5,
    )
    client.username_pw_set(env["MQTT_GATEWAY_USERNAME"], env["MQTT_GATEWAY_PASSWORD"])
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    infos = []
    for topic, payload, *props in messages:
        # paho refuses (ERR_QUEUE_SIZE) once too many are unconfirmed: keep a bounded window.
        if len(infos) >= PUBLISH_WINDOW:
            infos[-PUBLISH_WINDOW].wait_for_publish(timeout=120)
        infos.append(
            client.publish(topic, payload, qos=qos, properties=props[0] if props else None)
        )
    for info in infos:
        info.wait_for_publish(timeout=120)
    client.disconnect()
    client.loop_stop()
    return len(infos)


class BridgeRun(Process):
    """``python -m bridge ARGS`` as a child process, its log in a file and, at its exit, its
    JSON summary (``--summary``) beside it: results are read from the file, never the log."""

    def __init__(self, env: Mapping[str, str], args: list[str], log_file: Path) -> None:
        self.summary_file = log_file.with_suffix(".summary.json")
        argv = [sys.executable, "-m", "bridge", *args, "--summary", str(self.summary_file)]
        super().__init__("bridge", argv, log_file, {**os.environ, **env}, cwd=REPO_ROOT)

    def wait_subscribed(self, timeout: float = 60.0) -> BridgeRun:
        """Until the bridge has its subscription: what is published from then on reaches it."""
        deadline = time.monotonic() + timeout
        while "MQTT subscribed" not in self.log():
            if time.monotonic() > deadline or not self.alive:
                raise RuntimeError(f"the bridge did not subscribe:\n{self.log()[-2000:]}")
            time.sleep(0.05)
        return self

    def final_stats(self) -> dict[str, float]:
        """The counters of its summary (received, acked, ...) and ``busy_s``; empty when the
        bridge has not exited cleanly (it writes the summary last)."""
        try:
            summary = orjson.loads(self.summary_file.read_bytes())
        except FileNotFoundError:
            return {}
        return {**summary["counts"], "busy_s": summary["busy_s"]}


def watermarks(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The current end of every partition of ``topics``: read from here to see only new data."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "harness-watermarks"})
    try:
        meta = consumer.list_topics(timeout=10)
        out = []
        for topic in topics:
            for p in meta.topics[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                out.append(TopicPartition(topic, p, high))
        return out
    finally:
        consumer.close()


def read_since(
    bootstrap: str,
    start: list[TopicPartition],
    want: int,
    keep: Any = lambda key, headers: True,
    timeout: float = 60.0,
) -> list[tuple[str, bytes | None, bytes, dict[str, bytes]]]:
    """Records after ``start`` for which ``keep(key, headers)`` holds: at least ``want``, then
    up to the end (or until ``timeout``).

    Each is (topic, key, value, headers) in partition order.
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "harness-reader", "enable.auto.commit": False}
    )
    consumer.assign(start)
    got: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(10000, timeout=0.5)
            if len(got) >= want and not batch:
                break  # caught up: duplicates beyond ``want`` are read too
            for msg in batch:
                if msg.error():
                    continue
                headers = {k: v for k, v in (msg.headers() or [])}
                if keep(msg.key(), headers):
                    got.append((msg.topic(), msg.key(), msg.value(), headers))
    finally:
        consumer.close()
    return got


def seqs_by_device(records: Iterable[tuple[str, bytes | None, bytes, Any]]) -> dict[Any, list[int]]:
    """(device_id, stream topic) -> seqs in the order Kafka holds them."""
    out: dict[Any, list[int]] = {}
    for topic, _key, value, _headers in records:
        m = orjson.loads(value)
        out.setdefault((m["device_id"], topic), []).append(m["seq"])
    return out
