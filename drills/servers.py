"""What the fault drill stands on: throwaway servers, a lake root it reads back, and the audit.

The audit is the one core the report and the demo use (``spark.audit``, delta-rs, no Spark
session): silver must hold every ``(device_id, stream, seq)`` the devices' manifests list
exactly once; bronze shows what reached Kafka more than once, and each extra copy is charged
to the fault injected before it.
"""

from __future__ import annotations

import bisect
import contextlib
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow.dataset as ds

from contract import DATA_STREAMS
from contract.manifest import Manifest
from spark import audit as audit_core
from spark.reader import LakeReader
from stack.errors import StackError
from stack.flow import parquet_dataset, s3_filesystem
from stack.pipeline import Component

TOPIC_STREAM = {s.kafka_topic: s.name for s in DATA_STREAMS}


class Restartable(Protocol):
    def start(self) -> object: ...
    def stop(self) -> object: ...
    def kill(self) -> object: ...


@dataclass
class Servers:
    mosquitto: Restartable
    kafka: Restartable
    s3: Restartable
    env: dict[str, str]
    """Endpoints and credentials of these servers, overriding the shared stack's."""


@contextlib.contextmanager
def private_servers(home: Path, env: Mapping[str, str]) -> Iterator[Servers]:
    """A Mosquitto, a Kafka broker and an S3 server of the drill's own, on free ports, removed
    afterwards: the drill kills and stops them, which must not disturb the shared stack."""
    from stack.private import private_kafka, private_mosquitto, private_s3

    with (
        private_mosquitto(home / "mosquitto", env) as mqtt,
        private_kafka(home / "kafka", env) as kafka,
        private_s3(home / "s3", env) as s3,
    ):
        yield Servers(mqtt, kafka, s3, env={**mqtt.env, **kafka.env, **s3.env})


class Lake:
    """One lake root in an S3 bucket: ``s3a://$S3_BUCKET/<prefix>/``."""

    def __init__(self, env: Mapping[str, str], prefix: str) -> None:
        self.bucket = env["S3_BUCKET"]
        self.prefix = prefix.strip("/") + "/"
        self.root_uri = f"s3a://{self.bucket}/{self.prefix}"
        self.s3 = s3_filesystem(env)
        self.reader = LakeReader.from_env(env, self.root_uri)
        self.missing_total = 0
        self.silver_duplicates = 0

    def _dataset(self, layer: str, topic: str) -> ds.Dataset | None:
        # The Parquet files under a table, for the benchmarks' latency watch (not the audit).
        return parquet_dataset(self.s3, f"{self.bucket}/{self.prefix}{layer}/{topic}")

    def silver_total(self) -> int:
        """Rows in silver now, from the Delta log's statistics (no data read)."""
        return sum(self.reader.silver_rows().values())

    def wait_for_stream(self, checkpoint: Path, timeout: float, stream: Component) -> None:
        """Wait until the streaming job's query has fixed its starting offsets.

        A query started with ``--starting-offsets latest`` reads from the offsets it records
        in ``sources/0/0``; whatever is published before that file exists is not read.
        """
        from spark.settings import query_checkpoint

        deadline = time.monotonic() + timeout
        offsets = Path(query_checkpoint(checkpoint)) / "sources" / "0" / "0"
        ready = offsets.is_file
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


def audit(reader: LakeReader, manifest: Manifest, faults: list[tuple[str, float]]) -> AuditResult:
    """The audit core's verdict, each loss and extra copy charged to the fault before it."""
    core = audit_core.run(reader, manifest, kafka_times=True)
    result = AuditResult(missing=core.missing, silver_duplicates=core.silver_duplicates)
    for (_stream, _device, _seq), times in core.kafka_times.items():
        for extra in times[1:]:
            result.duplicates_by_fault[_charge(faults, extra)] += 1
    for row in core.rows:
        for first, last in row.missing_seqs:
            for seq in range(first, last + 1):
                # Lost after the previous seq reached Kafka: charge the fault before that.
                before = core.kafka_times.get((row.stream, row.device_id, seq - 1), (0.0,))[0]
                result.lost_by_fault[_charge(faults, before)] += 1
    return result
