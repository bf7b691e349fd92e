"""The streaming job against the real Kafka and S3 server: each Delta table exactly once after a
fault at any point of a batch's writes, after kill -9 and after a fresh checkpoint; quarantine,
dead letters, the clock guard and late rows. Each test has its own topics, lake and checkpoint."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Producer

from cityconf.env import REPO_ROOT
from cityconf.errors import UserError
from contract import VEHICLE
from spark import lake
from spark.settings import StreamSettings, add_arguments
from spark.stream import FAULT_ENV, run
from tests.spark.helpers import T0, create_topics, produce, series, unique, vehicle

TOPICS = ["vehicle_data", "dead_letter"]


def settings(env: dict[str, str], *argv: str) -> StreamSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return StreamSettings.from_args(parser.parse_args(list(argv)), env)


def lake_args(env: dict[str, str], name: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Fresh topics (vehicle_data, dead_letter) and lake root; the job's arguments for them."""
    prefix = unique(name) + "-"
    root = f"s3a://{env['S3_BUCKET']}/{prefix.rstrip('-')}/"
    create_topics(env["KAFKA_BOOTSTRAP_SERVERS"], prefix, TOPICS)
    args = ["--streams", "vehicle", "--topic-prefix", prefix, "--output-root", root]
    args += ["--checkpoint", str(tmp_path / "checkpoint")]
    return prefix, args


def table(spark, s: StreamSettings, t: lake.Table):
    return spark.read.format("delta").load(lake.Lake(s.output_root).uri(t))


def silver_keys(spark, s: StreamSettings) -> Counter:
    rows = table(spark, s, lake.silver(VEHICLE)).select("device_id", "seq").collect()
    return Counter((r.device_id, r.seq) for r in rows)


def exists(spark, s: StreamSettings, t: lake.Table) -> bool:
    return lake.Lake(s.output_root).exists(spark, t)


def dead_letter(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    headers = [("dlq_reason", b"invalid_json"), ("dlq_detail", b"unexpected character")]
    received = str(int(T0.timestamp() * 1000)).encode()
    headers += [("source_topic", b"city/vehicle/v9"), ("received_at", received)]
    producer.produce(topic, key=b"v9", value=b"{oops", headers=headers)
    assert producer.flush(30) == 0


def test_each_row_once_bad_rows_quarantined_dead_letters_kept_late_rows_in_silver(
    spark, stack_env, tmp_path
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix, args = lake_args(stack_env, "stream", tmp_path)
    topic = prefix + "vehicle_data"
    good = series("v1", range(1, 31)) + series("v2", range(1, 21))
    duplicates = [good[4], good[4], good[35]]
    produce(bootstrap, topic, [(m["device_id"], m) for m in good + duplicates])
    produce(bootstrap, topic, [("v1", b'{"device_id": "v1", "seq": "x"}')])
    produce(bootstrap, topic, [("v2", vehicle("v2", 21, T0, speed_kmh=999.0))])
    produce(bootstrap, topic, [("v3", vehicle("v4", 1, T0))])  # the key is another device
    dead_letter(bootstrap, prefix + "dead_letter")
    s = settings(stack_env, *args, "--available-now")
    first = run(s, stack_env)["vehicle_data"]
    assert first["received"] == 50 + 3 + 3
    # An hour behind everything seen so far: late, recorded as such, and in silver all the same.
    produce(bootstrap, topic, [("v3", vehicle("v3", 1, T0 - timedelta(hours=1)))])
    produce(bootstrap, topic, [("v1", vehicle("v1", 31, T0 + timedelta(seconds=31)))])
    run(s, stack_env)

    keys = silver_keys(spark, s)
    expected = {(m["device_id"], m["seq"]) for m in good} | {("v1", 31), ("v3", 1)}
    assert set(keys) == expected
    assert set(keys.values()) == {1}

    reasons = sorted(r.reason for r in table(spark, s, lake.quarantine()).collect())
    assert len(reasons) == 3
    assert reasons[0].startswith("key_mismatch: "), reasons
    assert "seq: expected int, got str" in reasons[1]
    assert "speed_kmh: 999.0 is above 300" in reasons[2]

    (late,) = table(spark, s, lake.late()).collect()
    assert (late.stream, late.device_id, late.seq) == ("vehicle", "v3", 1)
    assert late.lateness_s == pytest.approx(3600 + 31)  # behind v1's seq 31, same batch

    (dead,) = table(spark, s, lake.dead_letters()).collect()
    assert (dead.reason, dead.detail, dead.source_topic) == (
        "invalid_json",
        "unexpected character",
        "city/vehicle/v9",
    )
    assert dead.received_at == T0.replace(tzinfo=None)
    assert table(spark, s, lake.bronze()).count() == 50 + 3 + 3 + 2


def test_a_message_dated_2100_is_quarantined_and_every_other_row_lands(
    spark, stack_env, tmp_path
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix, args = lake_args(stack_env, "future", tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    before = [vehicle("f1", s, now - timedelta(minutes=30 - s)) for s in range(1, 11)]
    future = vehicle("f1", 11, datetime(2100, 1, 1, tzinfo=UTC))
    after = [vehicle("f1", s, now - timedelta(minutes=30 - s)) for s in range(12, 21)]
    produce(bootstrap, prefix + "vehicle_data", [("f1", m) for m in [*before, future]])
    s = settings(stack_env, *args, "--available-now")
    run(s, stack_env)
    produce(bootstrap, prefix + "vehicle_data", [("f1", m) for m in after])
    run(s, stack_env)

    assert set(silver_keys(spark, s)) == {("f1", n) for n in range(1, 21) if n != 11}
    (bad,) = table(spark, s, lake.quarantine()).collect()
    assert bad.reason.startswith("future_timestamp: 2100-01-01T00:00:00.000Z is more than 300 s")
    assert not exists(spark, s, lake.late())  # nothing measured against the year 2100


def test_replay_after_a_fault_at_each_write_of_a_batch_leaves_each_table_exactly_once(
    spark, stack_env, tmp_path, monkeypatch
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix, args = lake_args(stack_env, "fault", tmp_path)
    good = series("a1", range(1, 41)) + series("a2", range(1, 41))
    again = [good[7], good[7]]  # a2's rows append, a1's (repeated) go through the merge
    produce(bootstrap, prefix + "vehicle_data", [(m["device_id"], m) for m in good + again])
    produce(bootstrap, prefix + "vehicle_data", [("a1", b"not json")])
    dead_letter(bootstrap, prefix + "dead_letter")
    s = settings(stack_env, *args, "--available-now")
    # Batch 0 writes bronze, quarantine, dead letters, silver (append), silver (merge): fail it
    # before the first write, between each two, and after the last, one restart after another.
    # (A replay classifies against silver as it then is: once a2's rows are in, they merge.)
    for after in ("0", "1", "2", "3", "4", "last"):
        monkeypatch.setenv(FAULT_ENV, f"0:{after}")
        with pytest.raises(UserError):
            run(s, stack_env)
        if after in ("4", "last"):
            assert set(silver_keys(spark, s).values()) == {1}
    monkeypatch.delenv(FAULT_ENV)
    run(s, stack_env)

    keys = silver_keys(spark, s)
    assert set(keys) == {(m["device_id"], m["seq"]) for m in good}
    assert set(keys.values()) == {1}
    assert table(spark, s, lake.bronze()).count() == 80 + 2 + 1
    assert table(spark, s, lake.quarantine()).count() == 1
    assert table(spark, s, lake.dead_letters()).count() == 1


def test_a_fresh_checkpoint_leaves_every_committed_row_in_place(spark, stack_env, tmp_path) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix, args = lake_args(stack_env, "fresh", tmp_path)
    rows = series("c1", range(1, 31)) + series("c2", range(1, 31))
    produce(bootstrap, prefix + "vehicle_data", [(m["device_id"], m) for m in rows])
    run(settings(stack_env, *args, "--available-now"), stack_env)
    produce(bootstrap, prefix + "vehicle_data", [("c1", m) for m in series("c1", range(31, 41))])
    fresh = settings(stack_env, *args, "--available-now", "--checkpoint", str(tmp_path / "new"))
    run(fresh, stack_env)  # a new query id: it re-reads every offset from the start

    keys = silver_keys(spark, fresh)
    assert set(keys) == {(m["device_id"], m["seq"]) for m in rows} | {
        ("c1", n) for n in range(31, 41)
    }
    assert set(keys.values()) == {1}
    uri = lake.Lake(fresh.output_root).uri(lake.silver(VEHICLE))
    operations = {r.operation for r in spark.sql(f"DESCRIBE HISTORY delta.`{uri}`").collect()}
    assert operations <= {"WRITE", "MERGE", "CREATE TABLE"}, operations  # nothing deleted


def test_a_device_offline_for_two_hours_replays_its_buffer_into_silver_once(
    spark, stack_env, tmp_path
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix, args = lake_args(stack_env, "offline", tmp_path)
    minute = timedelta(minutes=1)
    others = [vehicle("on", n, T0 + n * minute) for n in range(1, 121)]
    before = [vehicle("off", n, T0 + n * minute) for n in range(1, 6)]
    buffered = [vehicle("off", n, T0 + n * minute) for n in range(6, 121)]
    produce(bootstrap, prefix + "vehicle_data", [(m["device_id"], m) for m in before + others])
    s = settings(stack_env, *args, "--available-now")
    run(s, stack_env)
    produce(bootstrap, prefix + "vehicle_data", [("off", m) for m in buffered])  # back online
    run(s, stack_env)

    keys = silver_keys(spark, s)
    assert set(keys) == {(d, n) for d in ("on", "off") for n in range(1, 121)}
    assert set(keys.values()) == {1}
    # Late is measured against the stream's newest event (T0 + 120 min), the batch's own
    # included: "off"'s first five rows were already behind "on" in the first batch.
    late = table(spark, s, lake.late()).where("device_id = 'off'").collect()
    assert sorted(r.seq for r in late) == [n for n in range(1, 121) if 120 - n > 10]


def test_kill_minus_9_and_restart_neither_loses_nor_duplicates(spark, stack_env, tmp_path) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    prefix, args = lake_args(stack_env, "kill", tmp_path)
    first = series("k1", range(1, 201)) + series("k2", range(1, 201))
    produce(bootstrap, prefix + "vehicle_data", [(m["device_id"], m) for m in first])
    log = (tmp_path / "stream.log").open("w")
    flags = ["--trigger", "1 second", "--max-offsets-per-trigger", "40"]
    job = subprocess.Popen(
        [sys.executable, "-m", "spark.stream", *args, *flags],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "SPARK_UI_ENABLED": "false"},
    )
    commits = tmp_path / "checkpoint" / "lake" / "commits"
    deadline = time.monotonic() + 300
    while not (commits / "1").exists():
        assert job.poll() is None, (tmp_path / "stream.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "no batch committed in 300 s"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)  # the driver and its JVM, no chance to clean up
    job.wait(30)
    assert sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())[-1] < 9

    more = series("k1", range(201, 251))
    produce(bootstrap, prefix + "vehicle_data", [(m["device_id"], m) for m in more])
    s = settings(stack_env, *args, "--available-now")
    run(s, stack_env)

    keys = silver_keys(spark, s)
    assert set(keys) == {(m["device_id"], m["seq"]) for m in first + more}
    assert [k for k, n in keys.items() if n > 1] == []
    assert table(spark, s, lake.bronze()).count() == 450
