"""The streaming job against the real Kafka and S3 server: exactly once, quarantine, late rows,
and a kill -9 in the middle. Each test has its own topics, lake root and checkpoint."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from spark.catalog import path_exists
from spark.settings import StreamSettings, add_arguments
from spark.stream import run
from stack.env import REPO_ROOT
from tests.spark.helpers import T0, create_topics, produce, series, unique, vehicle


def settings(env: dict[str, str], *argv: str) -> StreamSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return StreamSettings.from_args(parser.parse_args(list(argv)), env)


def lake_args(env: dict[str, str], name: str, tmp_path: Path) -> tuple[str, list[str]]:
    prefix = unique(name) + "-"
    root = f"s3a://{env['S3_BUCKET']}/{prefix.rstrip('-')}/"
    create_topics(env["KAFKA_BOOTSTRAP_SERVERS"], prefix, ["vehicle_data"])
    args = [
        "--streams",
        "vehicle",
        "--topic-prefix",
        prefix,
        "--output-root",
        root,
        "--checkpoint",
        str(tmp_path / "checkpoint"),
        "--watermark",
        "1 minute",
    ]
    return prefix + "vehicle_data", args


def silver_keys(spark, root: str) -> Counter:
    rows = spark.read.parquet(f"{root}silver/vehicle_data").select("device_id", "seq").collect()
    return Counter((r.device_id, r.seq) for r in rows)


def test_silver_holds_every_row_once_bad_rows_quarantined_late_rows_aside(
    spark, stack_env, tmp_path
) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    topic, args = lake_args(stack_env, "stream", tmp_path)
    good = series("v1", range(1, 31)) + series("v2", range(1, 21))
    duplicates = [good[4], good[4], good[35]]
    produce(bootstrap, topic, [(m["device_id"], m) for m in good + duplicates])
    produce(bootstrap, topic, [("v1", b'{"device_id": "v1", "seq": "x"}')])
    produce(bootstrap, topic, [("v2", vehicle("v2", 21, T0, speed_kmh=999.0))])
    s = settings(stack_env, *args, "--available-now")
    first = run(s, stack_env)["vehicle_data"]
    assert first["received"] == 50 + 3 + 2
    # The watermark now stands at T0 + 30 s − 1 minute: a row an hour older is late.
    produce(bootstrap, topic, [("v3", vehicle("v3", 1, T0 - timedelta(hours=1)))])
    produce(bootstrap, topic, [("v1", vehicle("v1", 31, T0 + timedelta(seconds=31)))])
    run(s, stack_env)

    keys = silver_keys(spark, s.output_root)
    expected = {(m["device_id"], m["seq"]) for m in good} | {("v1", 31)}
    assert set(keys) == expected
    assert set(keys.values()) == {1}

    quarantine = spark.read.parquet(f"{s.output_root}quarantine/vehicle_data").collect()
    reasons = sorted(r.reason for r in quarantine)
    assert len(reasons) == 2
    assert "seq: missing, null or not int" in reasons[0]
    assert "speed_kmh: 999.0 is above 300" in reasons[1]

    late = spark.read.parquet(f"{s.output_root}late/vehicle_data").collect()
    assert [(r.device_id, r.seq) for r in late] == [("v3", 1)]
    bronze = spark.read.parquet(f"{s.output_root}bronze/vehicle_data").count()
    assert bronze == 50 + 3 + 2 + 2


def test_kill_minus_9_and_restart_neither_loses_nor_duplicates(spark, stack_env, tmp_path) -> None:
    bootstrap = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    topic, args = lake_args(stack_env, "kill", tmp_path)
    # Batches cut across partitions unevenly while catching up; a wide watermark keeps every
    # row of this backlog on time, so silver alone must hold them all.
    args += ["--watermark", "1 hour"]
    first = series("k1", range(1, 201)) + series("k2", range(1, 201))
    produce(bootstrap, topic, [(m["device_id"], m) for m in first])
    log = (tmp_path / "stream.log").open("w")
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spark.stream",
            *args,
            "--trigger",
            "1 second",
            "--max-offsets-per-trigger",
            "40",
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "SPARK_UI_ENABLED": "false"},
    )
    commits = tmp_path / "checkpoint" / "vehicle_data" / "commits"
    deadline = time.monotonic() + 240
    while not (commits / "1").exists():
        assert job.poll() is None, (tmp_path / "stream.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "no batch committed in 240 s"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)  # the driver and its JVM, no chance to clean up
    job.wait(30)
    assert sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit())[-1] < 9

    more = series("k1", range(201, 251))
    produce(bootstrap, topic, [(m["device_id"], m) for m in more])
    run(settings(stack_env, *args, "--available-now"), stack_env)

    root = settings(stack_env, *args).output_root
    keys = silver_keys(spark, root)
    assert set(keys) == {(m["device_id"], m["seq"]) for m in first + more}
    assert [k for k, n in keys.items() if n > 1] == []
    assert not path_exists(spark, f"{root}late/vehicle_data")
