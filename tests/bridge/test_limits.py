"""What no payload, property or Kafka refusal can do to the bridge, against real servers:
oversize payloads and properties become capped dead letters, forged headers stay the
sender's, and a record Kafka refuses for good is dead-lettered while the rest flow in order."""

from __future__ import annotations

import hashlib
import random
import string
import time
import uuid
from pathlib import Path

import orjson
import pytest
import yaml
from confluent_kafka.admin import AdminClient, NewTopic
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import contract
from drills.harness import BridgeRun, publish, read_since, watermarks
from tests.bridge.helpers import sample

pytestmark = pytest.mark.integration
TOPICS = [*contract.KAFKA_TOPICS]


def start_bridge(env, tmp_path: Path, tag: str, count: int, *extra: str) -> BridgeRun:
    """A bridge that exits once it has taken ``count`` messages and Kafka has them all (not
    after an idle time: a slow publisher on a busy machine cannot end it early)."""
    args = ["--client-id", f"bridge-{tag}", "--max-messages", str(count), *extra]
    return BridgeRun(env, args, tmp_path / f"{tag}.log").start().wait_subscribed()


def valid(dev: str, seq: int, **fields: object) -> tuple[str, bytes]:
    return (f"city/vehicle/{dev}", orjson.dumps({**sample("vehicle", dev, seq), **fields}))


def user_props(pairs: list[tuple[str, str]]) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = pairs
    return props


@pytest.fixture
def env(stack_env, private_mosquitto) -> dict[str, str]:
    """The shared stack's Kafka and a private Mosquitto (no other test's traffic)."""
    return {**stack_env, **private_mosquitto(env=stack_env).env}


def mine(tag: str):
    return lambda _key, h: tag.encode() in h.get("mqtt_topic", b"")


def test_oversize_payload_and_properties_are_capped_and_the_stream_goes_on(env, tmp_path):
    tag = f"big{uuid.uuid4().hex[:6]}"
    dev = f"{tag}-0"
    huge = bytes(random.Random(1).randbytes(1_200_000))
    heavy = user_props([(f"p{i}", "v" * 60_000) for i in range(17)])  # ~1 MB of properties
    messages = [
        valid(dev, 1),
        (f"city/vehicle/{dev}", huge, None),
        valid(dev, 2),
        (*valid(dev, 3), heavy),
        *[valid(dev, seq) for seq in range(4, 51)],
    ]
    start = watermarks(env["KAFKA_BOOTSTRAP_SERVERS"], TOPICS)
    bridge = start_bridge(env, tmp_path, tag, len(messages))
    publish(env, messages)
    assert bridge.wait(90) == 0, bridge.log()
    got = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, 51, mine(tag))
    dead = {h["dlq_reason"]: (v, h) for t, _, v, h in got if t == "dead_letter"}
    assert set(dead) == {b"oversize", b"oversize_properties"}
    value, h = dead[b"oversize"]
    assert value == huge[:4096]
    assert h["dlq_payload_bytes"] == b"1200000"
    assert h["dlq_payload_sha256"] == hashlib.sha256(huge).hexdigest().encode()
    value, h = dead[b"oversize_properties"]
    assert orjson.loads(value)["seq"] == 3 and int(h["dlq_properties_bytes"]) > 1_000_000
    assert not any(k.startswith("mqtt.user.") for k in h)
    seqs = [orjson.loads(v)["seq"] for t, _, v, _ in got if t == "vehicle_data"]
    assert seqs == [1, 2, *range(4, 51)]
    assert bridge.final_stats()["acked"] == 51
    assert "no maximum packet size" not in bridge.log()  # the broker's CONNACK bounds reads


def test_a_forged_mqtt_topic_property_does_not_change_the_bridge_headers(env, tmp_path):
    tag = f"forge{uuid.uuid4().hex[:6]}"
    dev = f"{tag}-0"
    forged = [
        ("mqtt_topic", "city/vehicle/victim"),
        ("bridge_id", "evil"),
        ("received_at", "0"),
        ("dlq_reason", "none"),
    ]
    start = watermarks(env["KAFKA_BOOTSTRAP_SERVERS"], TOPICS)
    bridge = start_bridge(env, tmp_path, tag, 2)
    publish(
        env,
        [(*valid(dev, 1), user_props(forged)), (f"city/vehicle/{dev}", b"{", user_props(forged))],
    )
    assert bridge.wait(60) == 0, bridge.log()
    got = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, 2, mine(tag))
    assert sorted(t for t, *_ in got) == ["dead_letter", "vehicle_data"]
    for topic, _, _, h in got:
        assert h["mqtt_topic"] == f"city/vehicle/{dev}".encode()
        assert h["bridge_id"] == f"bridge-{tag}".encode() and h["received_at"] != b"0"
        assert h["mqtt.user.mqtt_topic"] == b"city/vehicle/victim"
        assert h["mqtt.user.bridge_id"] == b"evil"
        assert h.get("dlq_reason") == (b"invalid_json" if topic == "dead_letter" else None)


def test_a_record_kafka_refuses_for_good_is_dead_lettered_and_order_holds(env, tmp_path):
    tag = f"ref{uuid.uuid4().hex[:6]}"
    dev = f"{tag}-0"
    small_topic = f"small_{tag}"
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"max.message.bytes": "10000"}
    admin.create_topics([NewTopic(small_topic, 1, 1, config=config)])[small_topic].result(30)
    routes = [
        {"filter": f"city/vehicle/{dev}", "topic": small_topic},
        {"filter": "city/status/+", "topic": "device_status"},
        {"filter": "city/+/+", "topic": "{stream_topic}"},
    ]
    conf = tmp_path / "bridge.yaml"
    conf.write_text(yaml.safe_dump({"routes": routes}))
    start = watermarks(bootstrap, [*TOPICS, small_topic])
    bridge = start_bridge(env, tmp_path, tag, 20, "--config", str(conf))
    # Paced: each record its own batch, so Kafka refuses only the large one.
    make = "".join(random.Random(2).choices(string.ascii_letters, k=30_000))  # incompressible
    for seq in range(1, 21):
        fields = {"make": make} if seq == 11 else {}
        publish(env, [valid(dev, seq, **fields)])
        time.sleep(0.05)
    assert bridge.wait(90) == 0, bridge.log()
    got = read_since(bootstrap, start, 20, mine(tag))
    kept = [orjson.loads(v)["seq"] for t, _, v, _ in got if t == small_topic]
    assert kept == [*range(1, 11), *range(12, 21)]  # in order, each once
    dead = [(v, h) for t, _, v, h in got if t == "dead_letter"]
    assert len(dead) == 1
    value, h = dead[0]
    assert h["dlq_reason"] == b"kafka_refused" and b"MSG_SIZE_TOO_LARGE" in h["dlq_detail"]
    assert len(value) == 4096 and int(h["dlq_payload_bytes"]) > 30_000
    stats = bridge.final_stats()
    assert stats["acked"] == 20 and stats["kafka_refused"] == 1
    admin.delete_topics([small_topic])
