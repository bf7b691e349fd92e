"""What one micro-batch holds, told by one small aggregate job before anything is written.

Per stream and device: rows, distinct seqs, lowest and highest seq, oldest and newest event
time; per stream: received, valid and quarantined counts; and the dead letters. The writer
plans its table writes from it (which tables have rows, which devices need the merge) and the
seq index advances by it once the batch has committed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark import transforms
from spark.schema import EVENT_TIME


@dataclass(frozen=True)
class DeviceStats:
    rows: int
    distinct: int
    low: int | None
    high: int | None


@dataclass
class Summary:
    """What one aggregate job tells about a batch, before anything is written."""

    received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    quarantined: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    valid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    devices: dict[str, dict[str, DeviceStats]] = field(default_factory=lambda: defaultdict(dict))
    oldest: dict[str, datetime] = field(default_factory=dict)
    newest: dict[str, datetime] = field(default_factory=dict)
    dead_letters: int = 0
    unchecked: int = 0
    """Records the fast check refused; until the contract has judged them, not valid."""


def summarize(frame: DataFrame, dead_letter_topic: str | None) -> Summary:
    """Per stream and device: rows, distinct seqs, lowest/highest seq, oldest/newest event."""
    ok = transforms.valid()
    when_ok = lambda c: F.when(ok, c)  # noqa: E731
    event = F.coalesce(*(F.col(f"{c}.{EVENT_TIME}") for c in _structs(frame)))
    rows = (
        frame.groupBy(
            "topic",
            "stream",
            "checked",
            ok.alias("ok"),
            F.when(ok, F.col("device_id")).alias("device"),
        )
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.count_distinct(when_ok(F.col("seq"))).alias("distinct"),
            F.min(when_ok(F.col("seq"))).alias("low"),
            F.max(when_ok(F.col("seq"))).alias("high"),
            F.min(when_ok(event)).alias("oldest"),
            F.max(when_ok(event)).alias("newest"),
        )
        .collect()
    )
    summary = Summary()
    for r in rows:
        if r.stream is None:
            if r.topic == dead_letter_topic:
                summary.dead_letters += r.n
            continue
        summary.received[r.stream] += r.n
        if not r.checked:
            summary.unchecked += r.n
        if not r.ok:
            summary.quarantined[r.stream] += r.n
            continue
        summary.valid[r.stream] += r.n
        summary.devices[r.stream][r.device] = DeviceStats(r.n, r.distinct, r.low, r.high)
        if r.oldest is not None:
            old = summary.oldest.get(r.stream)
            summary.oldest[r.stream] = r.oldest if old is None else min(old, r.oldest)
            new = summary.newest.get(r.stream)
            summary.newest[r.stream] = r.newest if new is None else max(new, r.newest)
    return summary


def _structs(frame: DataFrame) -> list[str]:
    """The wide frame's typed struct columns, one a stream (``transforms.struct_column``)."""
    return [c for c in frame.columns if c.startswith("_") and not c.startswith("_p_")]
