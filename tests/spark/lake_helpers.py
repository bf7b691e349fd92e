"""Small Delta lakes on local disk, written with delta-rs: what the audit reads, no servers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
from deltalake import write_deltalake

from contract import STREAMS
from spark import lake

KAFKA_T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def silver(root: Path, stream: str, keys: Iterable[tuple[str, int]]) -> None:
    """Append silver rows (only the key columns the audit reads) to one stream's table."""
    pairs = list(keys)
    table = pa.table(
        {
            "device_id": pa.array([d for d, _ in pairs], pa.string()),
            "seq": pa.array([s for _, s in pairs], pa.int64()),
        }
    )
    write_deltalake(str(root / lake.silver(STREAMS[stream]).path), table, mode="append")


def bronze(
    root: Path, stream: str, keys: Iterable[tuple[str, int]], at: Iterable[float] | None = None
) -> None:
    """Kafka records as bronze holds them: the raw JSON value, its topic and Kafka timestamp."""
    pairs = list(keys)
    seconds = list(at) if at is not None else [0.0] * len(pairs)
    table = pa.table(
        {
            "topic": pa.array([STREAMS[stream].kafka_topic] * len(pairs), pa.string()),
            "value": pa.array(
                [orjson.dumps({"device_id": d, "seq": s}) for d, s in pairs], pa.binary()
            ),
            "timestamp": pa.array(
                [int((KAFKA_T0.timestamp() + t) * 1_000_000) for t in seconds],
                pa.timestamp("us", "UTC"),
            ),
        }
    )
    write_deltalake(str(root / lake.bronze().path), table, mode="append")


def quarantine(root: Path, stream: str, payloads: Iterable[str]) -> None:
    texts = list(payloads)
    table = pa.table(
        {
            "topic": pa.array([STREAMS[stream].kafka_topic] * len(texts), pa.string()),
            "payload": pa.array(texts, pa.string()),
            "reason": pa.array(["schema: test"] * len(texts), pa.string()),
        }
    )
    write_deltalake(str(root / lake.quarantine().path), table, mode="append")


def late(root: Path, stream: str, keys: Iterable[tuple[str, int]]) -> None:
    pairs = list(keys)
    table = pa.table(
        {
            "stream": pa.array([stream] * len(pairs), pa.string()),
            "device_id": pa.array([d for d, _ in pairs], pa.string()),
            "seq": pa.array([s for _, s in pairs], pa.int64()),
        }
    )
    write_deltalake(str(root / lake.late().path), table, mode="append")
