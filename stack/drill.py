"""What the fault drill stands on: throwaway servers, a lake root it reads back, and the audit.

The audit reads the lake with pyarrow (no Spark session needed): silver must hold every
``(device_id, stream, seq)`` from 1 to the last published seq exactly once; bronze shows what
reached Kafka more than once, and each extra copy is charged to the fault injected before it.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
import pyarrow.dataset as ds

from contract import DATA_STREAMS
from stack.errors import StackError
from stack.flow import parquet_dataset, s3_filesystem
from stack.pipeline import Component

TOPIC_STREAM = {s.kafka_topic: s.name for s in DATA_STREAMS}


class Restartable(Protocol):
    def start(self) -> object: ...
    def stop(self) -> object: ...


@dataclass
class Servers:
    mosquitto: Restartable
    kafka: Restartable
    env: dict[str, str]
    """Endpoints and credentials of these servers, overriding the shared stack's."""


@contextlib.contextmanager
def private_servers(home: Path, env: Mapping[str, str]) -> Iterator[Servers]:
    """A Mosquitto and a Kafka broker of the drill's own, on free ports, removed afterwards."""
    from stack.private import private_kafka, private_mosquitto

    with (
        private_mosquitto(home / "mosquitto", env) as mqtt,
        private_kafka(home / "kafka", env) as kafka,
    ):
        yield Servers(mosquitto=mqtt, kafka=kafka, env={**mqtt.env, **kafka.env})


class Lake:
    """One lake root in the shared S3 bucket: ``s3a://$S3_BUCKET/<prefix>/``."""

    def __init__(self, env: Mapping[str, str], prefix: str) -> None:
        self.bucket = env["S3_BUCKET"]
        self.prefix = prefix.strip("/") + "/"
        self.root_uri = f"s3a://{self.bucket}/{self.prefix}"
        self.s3 = s3_filesystem(env)
        self.missing_total = 0
        self.silver_duplicates = 0

    def _dataset(self, layer: str, topic: str) -> ds.Dataset | None:
        return parquet_dataset(self.s3, f"{self.bucket}/{self.prefix}{layer}/{topic}")

    def silver_total(self) -> int:
        total = 0
        for topic in TOPIC_STREAM:
            dataset = self._dataset("silver", topic)
            total += dataset.count_rows() if dataset is not None else 0
        return total

    def wait_for_stream(self, checkpoint: Path, timeout: float, stream: Component) -> None:
        """Wait until every query of the streaming job has fixed its starting offsets.

        A query started with ``--starting-offsets latest`` reads from the offsets it records
        in ``sources/0/0``; whatever is published before that file exists is not read. The
        queries start one after another (a minute apart on a busy machine), so all must be
        ready before the devices start, not just the first.
        """
        deadline = time.monotonic() + timeout
        ready = lambda: all(  # noqa: E731
            (checkpoint / topic / "sources" / "0" / "0").is_file() for topic in TOPIC_STREAM
        )
        while not ready():
            stream.check()
            if time.monotonic() > deadline:
                raise StackError(
                    f"the streaming job did not start in {timeout:.0f} s; see {stream.log_file}"
                )
            time.sleep(1)

    def wait_for_rows(self, total: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (rows := self.silver_total()) < total and time.monotonic() < deadline:
            time.sleep(2)
        return rows


@dataclass
class AuditResult:
    missing: int = 0
    silver_duplicates: int = 0
    lost_by_fault: Counter[str] = field(default_factory=Counter)
    duplicates_by_fault: Counter[str] = field(default_factory=Counter)


def _charge(faults: list[tuple[str, float]], when_s: float) -> str:
    """The fault injected last before ``when_s`` (epoch seconds), or 'before any fault'."""
    times = [t for _, t in faults]
    i = bisect.bisect_right(times, when_s) - 1
    return faults[i][0] if i >= 0 else "before any fault"


def audit(
    lake: Lake, expected: Mapping[tuple[str, str], int], faults: list[tuple[str, float]]
) -> AuditResult:
    result = AuditResult()
    for topic, stream in TOPIC_STREAM.items():
        silver = lake._dataset("silver", topic)
        seen: Counter[tuple[str, int]] = Counter()
        if silver is not None:
            table = silver.to_table(columns=["device_id", "seq"]).to_pydict()
            seen.update(zip(table["device_id"], table["seq"], strict=True))
        result.silver_duplicates += sum(n - 1 for n in seen.values() if n > 1)
        kafka_time: dict[tuple[str, int], float] = {}
        copies: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
        bronze = lake._dataset("bronze", topic)
        if bronze is not None:
            rows = bronze.to_table(columns=["value", "timestamp"]).to_pylist()
            for row in rows:
                try:
                    msg = orjson.loads(row["value"])
                    key = (msg["device_id"], msg["seq"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                copies[key].append(row["timestamp"].timestamp())
        for key, times in copies.items():
            times.sort()
            kafka_time[key] = times[0]
            for extra in times[1:]:
                result.duplicates_by_fault[_charge(faults, extra)] += 1
        for (device, name), last in expected.items():
            if name != stream:
                continue
            for seq in range(1, last + 1):
                if (device, seq) not in seen:
                    result.missing += 1
                    before = kafka_time.get((device, seq - 1), 0.0)
                    result.lost_by_fault[_charge(faults, before)] += 1
    return result
