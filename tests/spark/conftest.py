"""Spark fixtures of the Spark tests: ``local_spark`` for pure DataFrame tests, beside the
stack-backed ``spark`` (tests/conftest.py) that integration tests use."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="module")
def local_spark() -> Iterator[SparkSession]:
    """A plain local SparkSession: no Kafka, no S3, no jars, so no server is needed.

    A session already running (the stack-backed one, a superset) is reused. One made here is
    stopped after the module with its JVM: jars can only join a JVM at its launch, so a later
    ``spark`` fixture must get a JVM of its own. (No pure test writes Delta; one that does
    would add the Delta jars of SPARK_JARS_DIR here, still without S3 or Kafka.)"""
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("cityfleet-local-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
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
