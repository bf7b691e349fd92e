"""Spark fixtures of the Spark tests: ``local_spark`` and ``local_delta_spark`` for pure
DataFrame tests, beside the stack-backed ``spark`` (tests/conftest.py) of integration tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="module")
def local_spark() -> Iterator[SparkSession]:
    """A plain local SparkSession: no Kafka, no S3, no jars, so no server is needed."""
    yield from _local_session({})


@pytest.fixture(scope="module")
def local_delta_spark() -> Iterator[SparkSession]:
    """A local SparkSession that reads and writes Delta tables on local paths: the Delta jars
    of the state folder (``SPARK_JARS_DIR``, which `make up` fills), still no S3 or Kafka.
    Skipped, saying why, where those jars are not installed."""
    jars = _delta_jars()
    if not jars:
        pytest.skip("no Delta jars in SPARK_JARS_DIR: `python -m stack install spark-jars`")
    from spark.session import delta_conf

    yield from _local_session({"spark.jars": ",".join(jars), **delta_conf()})


def _delta_jars() -> list[str]:
    from cityconf.env import load_env

    folder = load_env().get("SPARK_JARS_DIR")
    return sorted(str(p) for p in Path(folder).glob("delta-*.jar")) if folder else []


def _local_session(conf: dict[str, str]) -> Iterator[SparkSession]:
    """A session already running (the stack-backed one, a superset) is reused. One made here
    is stopped after the module with its JVM: jars can only join a JVM at its launch, so the
    next session (a stack-backed ``spark``, or another module's) gets a JVM of its own."""
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master("local[1]").appName("cityfleet-local-tests")
    for key, value in {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "1",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        **conf,
    }.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()
    _stop_jvm()


def _stop_jvm() -> None:
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    proc = getattr(gateway, "proc", None)
    if proc is not None:  # the JVM exits when its stdin closes
        proc.stdin.close()
        proc.wait(60)
    SparkContext._gateway = None
    SparkContext._jvm = None
