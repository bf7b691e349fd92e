"""The bridge against real Mosquitto (private, so no other test's traffic) and real Kafka."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import psutil
import pytest

import contract
from drills.harness import BridgeRun, publish, read_since, seqs_by_device, watermarks
from tests.bridge.helpers import sample

pytestmark = pytest.mark.integration
TOPICS = [s.kafka_topic for s in contract.ALL_STREAMS] + ["dead_letter"]


def traffic(tag: str, devices: int, per_device: int, streams=("vehicle", "gps")):
    """Interleaved valid messages: every device, every stream, seq 1..per_device."""
    out = []
    for seq in range(1, per_device + 1):
        for d in range(devices):
            for stream in streams:
                dev = f"{tag}-{d}"
                out.append((f"city/{stream}/{dev}", orjson.dumps(sample(stream, dev, seq))))
    return out


def ours(tag: str):
    return lambda key, headers: (key or b"").startswith(tag.encode())


def bridge_env(stack_env, mosq, kafka_bootstrap=None) -> dict[str, str]:
    env = {**stack_env, **mosq.env}
    if kafka_bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
    return env


def run(env, tmp_path: Path, client_id: str, *extra: str) -> BridgeRun:
    args = ["--client-id", client_id, "--log-level", "INFO", *extra]
    return BridgeRun(env, args, tmp_path / f"{client_id}.log").start()


def test_every_message_arrives_in_order_per_device(stack_env, private_mosquitto, tmp_path):
    mosq = private_mosquitto(env=stack_env)
    env = bridge_env(stack_env, mosq)
    tag = f"ord{uuid.uuid4().hex[:6]}"
    start = watermarks(env["KAFKA_BOOTSTRAP_SERVERS"], TOPICS)
    sent = traffic(tag, devices=5, per_device=400)
    # --max-messages, not an idle timeout: a slow publisher on a busy machine cannot end it early.
    bridge = run(env, tmp_path, f"bridge-{tag}", "--max-messages", str(len(sent)))
    bridge.wait_subscribed()
    publish(env, sent)
    assert bridge.wait(120) == 0, bridge.log()
    got = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, len(sent), ours(tag))
    seqs = seqs_by_device(got)
    assert len(seqs) == 10
    for (dev, topic), s in seqs.items():
        assert s == list(range(1, 401)), (dev, topic)
    assert all(h["mqtt_topic"].decode().endswith(k) for _, k_, _, h in got for k in [k_.decode()])
    stats = bridge.final_stats()
    assert stats["acked"] == len(sent) and stats["seq_gaps"] == 0


def test_kill_9_midstream_then_restart_loses_nothing(stack_env, private_mosquitto, tmp_path):
    mosq = private_mosquitto(env=stack_env)
    env = bridge_env(stack_env, mosq)
    tag = f"k9{uuid.uuid4().hex[:6]}"
    cid = f"bridge-{tag}"
    # First run only creates the persistent session; the backlog then waits in Mosquitto.
    assert run(env, tmp_path, cid, "--idle-exit", "1").wait(30) == 0
    sent = traffic(tag, devices=4, per_device=5000)
    publish(env, sent)
    start = watermarks(env["KAFKA_BOOTSTRAP_SERVERS"], TOPICS)
    first = run(env, tmp_path, cid).wait_subscribed()
    # Mid-stream: some of the 40,000-message backlog is in Kafka, not all of it.
    wait_relayed(env["KAFKA_BOOTSTRAP_SERVERS"], start, 1000, ours(tag))
    first.kill()  # SIGKILL: no drain, no goodbye
    before = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, 1000, ours(tag), timeout=30)
    assert len(before) < len(sent), "the bridge relayed the whole backlog before the kill"
    second = run(env, tmp_path, cid, "--idle-exit", "3")
    assert second.wait(120) == 0, second.log()
    got = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, len(sent), ours(tag), timeout=60)
    seqs = seqs_by_device(got)
    assert len(seqs) == 4 * 2  # every device, both streams
    for key, s in seqs.items():
        assert set(s) == set(range(1, 5001)), key
    duplicates = len(got) - len(sent)
    assert duplicates >= 0
    print(f"kill -9: {len(sent)} sent, {len(got)} in Kafka, {duplicates} duplicates")


def test_kafka_outage_under_load_loses_nothing_and_memory_stays_flat(
    stack_env, private_mosquitto, private_kafka, tmp_path
):
    mosq = private_mosquitto(env=stack_env)
    kafka = private_kafka()
    env = bridge_env(stack_env, mosq, kafka.bootstrap)
    tag = f"out{uuid.uuid4().hex[:6]}"
    bridge = run(env, tmp_path, f"bridge-{tag}").wait_subscribed()
    proc = psutil.Process(bridge.proc.pid)
    batches, rss = [], []
    for i in range(8):  # load before, during and after a 20 s outage
        if i == 2:
            kafka.stop()
        if i == 6:
            kafka.start()
        batch = traffic(f"{tag}b{i}", devices=4, per_device=1000)
        publish(env, batch)
        batches += batch
        rss.append(proc.memory_info().rss)
        time.sleep(5 if 2 <= i < 6 else 1)  # pacing: load spread over the outage's 20 s
    got = read_since(
        kafka.bootstrap,
        watermarks(kafka.bootstrap, []) or _from_start(kafka),
        len(batches),
        ours(tag),
        timeout=120,
    )
    bridge.proc.terminate()
    assert bridge.wait(30) == 0, bridge.log()
    want = {
        (orjson.loads(p)["device_id"], orjson.loads(p)["seq"], t.split("/")[1]) for t, p in batches
    }
    have = {
        (orjson.loads(v)["device_id"], orjson.loads(v)["seq"], t.split("_")[0])
        for t, _, v, _ in got
    }
    assert want <= have, f"{len(want - have)} missing"
    assert have == want and len(want) == 8 * 4 * 1000 * 2  # nothing of ours but what was sent
    assert len(got) >= len(batches)
    assert max(rss) - min(rss) < 150 * 2**20, [r // 2**20 for r in rss]


def wait_relayed(bootstrap, start, at_least: int, keep, timeout: float = 60.0) -> None:
    """Until Kafka holds ``at_least`` of the records ``keep`` selects after ``start``."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-relayed", "enable.auto.commit": False}
    )
    consumer.assign(start)
    seen, deadline = 0, time.monotonic() + timeout
    try:
        while seen < at_least:
            assert time.monotonic() < deadline, f"only {seen} records relayed in {timeout:.0f} s"
            for msg in consumer.consume(1000, timeout=0.2):
                if not msg.error() and keep(msg.key(), dict(msg.headers() or [])):
                    seen += 1
    finally:
        consumer.close()


def _from_start(kafka):
    from confluent_kafka import TopicPartition

    marks = watermarks(kafka.bootstrap, TOPICS)
    return [TopicPartition(tp.topic, tp.partition, 0) for tp in marks]


def test_malformed_payloads_are_dead_lettered_and_good_traffic_flows(
    stack_env, private_mosquitto, tmp_path
):
    mosq = private_mosquitto(env=stack_env)
    env = bridge_env(stack_env, mosq)
    tag = f"dlq{uuid.uuid4().hex[:6]}"
    dev = f"{tag}-0"
    good = sample("vehicle", dev, 1)
    body = orjson.dumps(good)
    junk = {
        "truncated": (f"city/vehicle/{dev}", body[: len(body) // 2], "invalid_json"),
        "binary": (f"city/vehicle/{dev}", bytes(range(256)), "invalid_json"),
        "wrong_type": (f"city/vehicle/{dev}", orjson.dumps({**good, "seq": "1"}), "schema"),
        "missing": (f"city/vehicle/{dev}", orjson.dumps({"device_id": dev}), "schema"),
        "huge": (f"city/vehicle/{dev}", b" " * 200_000, "oversize"),
        "unknown": (f"city/nosuch/{dev}", body, "unknown_topic"),
        "mismatch": (f"city/vehicle/{tag}-other", body, "device_mismatch"),
        "array": (f"city/vehicle/{dev}", b"[]", "not_an_object"),
    }
    start = watermarks(env["KAFKA_BOOTSTRAP_SERVERS"], TOPICS)
    valid = traffic(tag, devices=2, per_device=50)
    count = str(len(valid) + len(junk))
    bridge = run(env, tmp_path, f"bridge-{tag}", "--max-messages", count).wait_subscribed()
    publish(env, valid[:50] + [(t, p) for t, p, _ in junk.values()] + valid[50:])
    assert bridge.wait(120) == 0, bridge.log()
    mine = lambda key, h: tag.encode() in h.get("mqtt_topic", b"")  # noqa: E731
    got = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, len(valid) + len(junk), mine)
    dead = [h["dlq_reason"].decode() for t, _, _, h in got if t == "dead_letter"]
    assert sorted(dead) == sorted(r for _, _, r in junk.values())
    for topic, _, value, headers in got:
        if topic == "dead_letter":
            # An oversize payload is capped at its first 4 KiB; the rest are whole.
            assert any(value == p[:4096] for _, p, _ in junk.values())
            assert headers["dlq_detail"]
    assert sum(t != "dead_letter" for t, *_ in got) == len(valid)


def test_mosquitto_restart_the_bridge_rejoins_and_loses_nothing(
    stack_env, private_mosquitto, tmp_path
):
    mosq = private_mosquitto(env=stack_env)
    env = bridge_env(stack_env, mosq)
    tag = f"mr{uuid.uuid4().hex[:6]}"
    start = watermarks(env["KAFKA_BOOTSTRAP_SERVERS"], TOPICS)
    bridge = run(env, tmp_path, f"bridge-{tag}", "--idle-exit", "20").wait_subscribed()
    before = traffic(tag, devices=2, per_device=200)
    publish(env, before)
    mosq.stop()  # SIGTERM: Mosquitto saves its persistent sessions
    mosq.start()
    after = [
        (f"city/{stream}/{tag}-{d}", orjson.dumps(sample(stream, f"{tag}-{d}", seq)))
        for seq in range(201, 401)
        for d in range(2)
        for stream in ("vehicle", "gps")
    ]
    publish(env, after)
    total = len(before) + len(after)
    got = read_since(env["KAFKA_BOOTSTRAP_SERVERS"], start, total, ours(tag), timeout=90)
    assert bridge.wait(120) == 0, bridge.log()
    assert bridge.log().count("MQTT connected") >= 2, "the bridge never rejoined the broker"
    seqs = seqs_by_device(got)
    assert len(seqs) == 2 * 2  # every device, both streams
    for key, s in seqs.items():
        assert set(s) == set(range(1, 401)), key
