"""What silver already holds, per stream and device: the highest seq, and the newest event.

Silver needs no Spark state store. The index keeps, per stream and device, the highest seq
committed to silver (rebuilt from silver with one GROUP BY when the job starts, raised after
each batch commits). A device whose rows in a batch are all above its highest and distinct
cannot have any of them in silver yet, so they are appended; the others (a redelivery, a
reordering by two bridges, a replay from a fresh checkpoint) are suspects and go through the
insert-only ``MERGE`` on ``(device_id, seq)``. See spark/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from contract import Stream
from spark import lake
from spark.lake import Lake
from spark.schema import EVENT_TIME
from spark.summary import Summary


@dataclass
class SeqIndex:
    """Per stream: device_id → highest seq in silver, and the newest event time seen.

    Bounded by the number of devices (about 100 bytes an entry in CPython: 10,000 devices on
    five streams take about 5 MB), never by the number of rows.
    """

    top: dict[str, dict[str, int]] = field(default_factory=dict)
    newest: dict[str, datetime] = field(default_factory=dict)

    @classmethod
    def load(cls, spark: SparkSession, where: Lake, streams: tuple[Stream, ...]) -> SeqIndex:
        """One GROUP BY per silver table that exists."""
        index = cls()
        for stream in streams:
            table = lake.silver(stream)
            if not where.exists(spark, table):
                continue
            df = spark.read.format("delta").load(where.uri(table))
            if stream.sequenced:
                rows = df.groupBy("device_id").agg(F.max("seq"), F.max(EVENT_TIME)).collect()
                index.top[stream.name] = {r[0]: int(r[1]) for r in rows}
                newest = [r[2] for r in rows if r[2] is not None]
            else:
                newest = [r[0] for r in df.agg(F.max(EVENT_TIME)).collect() if r[0] is not None]
            if newest:
                index.newest[stream.name] = max(newest)
        return index

    def entries(self) -> int:
        return sum(len(d) for d in self.top.values())

    def suspects(self, stream: Stream, summary: Summary) -> set[str] | None:
        """The batch's devices whose rows may already be in silver or repeat within the batch.

        ``None`` means every device of the batch (a stream without seqs).
        """
        if not stream.sequenced:
            return None
        top = self.top.get(stream.name, {})
        return {
            device
            for device, st in summary.devices[stream.name].items()
            if st.low is None or st.low <= top.get(device, 0) or st.distinct != st.rows
        }

    def newest_with(self, streams: tuple[Stream, ...], summary: Summary) -> dict[Stream, datetime]:
        """Each stream's newest event time, counting the batch's rows too."""
        out = {}
        for stream in streams:
            times = [
                t for t in (self.newest.get(stream.name), summary.newest.get(stream.name)) if t
            ]
            if times:
                out[stream] = max(times)
        return out

    def advance(self, summary: Summary) -> None:
        """Raise each device's highest seq and each stream's newest event: all in silver now."""
        for stream, devices in summary.devices.items():
            top = self.top.setdefault(stream, {})
            for device, st in devices.items():
                if st.high is not None and st.high > top.get(device, 0):
                    top[device] = st.high
        for stream, newest in summary.newest.items():
            old = self.newest.get(stream)
            self.newest[stream] = newest if old is None else max(old, newest)
