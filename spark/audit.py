"""The completeness audit: per stream and device, what the devices published against silver.

One core for every caller: the report's audit section (``spark.report``, which also writes it
as JSON with ``--audit-json``), the demo's verdict and totals (``drills.demo`` reads that JSON)
and the fault drills (``drills.faults``) all call :func:`run`, so they cannot disagree. It
reads the Delta tables with delta-rs (``spark.reader``), no Spark session.

Silver holds every valid row exactly once however late it came, so the audit counts silver
alone; the late record (``late``) only says which rows came late. Per (stream, device):

* ``expected``: the seqs from the manifest's ``first_seq`` to ``last_seq`` when a manifest is
  given (the run it describes; devices it does not name are left out), else 1 to the highest
  seq seen;
* ``received``: distinct expected seqs in silver; ``missing`` the expected seqs not there,
  ``gap_ranges`` the holes below the highest received seq;
* ``silver_duplicates``: silver rows beyond one per ``(device_id, seq)``; never expected (the
  writer is exactly once), but a checkpoint reset replaying old offsets could cause them, and
  ``python -m spark.maintain --dedupe`` removes them;
* ``duplicates_removed``: copies that reached Kafka and were dropped before silver. Every
  bronze record ends quarantined, in silver, or dropped: ``bronze − quarantined − silver``.

The verdict is OK only with nothing missing and nothing duplicated in silver.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from contract import DATA_STREAMS, Stream
from contract.manifest import Manifest
from spark import lake
from spark.reader import LakeReader

KEY = ("stream", "device_id")
Key = tuple[str, str, int]
"""(stream name, device_id, seq)."""


@dataclass(frozen=True)
class DeviceAudit:
    """The audit of one device's stream."""

    stream: str
    device_id: str
    first_seq: int
    expected: int
    received: int
    missing: int
    gap_ranges: tuple[str, ...]
    silver_rows: int
    silver_duplicates: int
    duplicates_removed: int
    late_rows: int
    quarantined: int
    bronze_rows: int
    missing_seqs: tuple[tuple[int, int], ...] = ()
    """Every missing range ``(first, last)``, the trailing one too (``gap_ranges`` omits it)."""

    def as_row(self) -> dict[str, Any]:
        """The gold table's row (``missing_seqs`` is for callers, not the table)."""
        row = asdict(self)
        del row["missing_seqs"]
        row["gap_ranges"] = list(self.gap_ranges)
        return row


GOLD_SCHEMA = (
    "stream string, device_id string, first_seq bigint, expected bigint, received bigint, "
    "missing bigint, gap_ranges array<string>, silver_rows bigint, silver_duplicates bigint, "
    "duplicates_removed bigint, late_rows bigint, quarantined bigint, bronze_rows bigint"
)
"""Spark DDL of the ``gold/audit`` table, the columns of :meth:`DeviceAudit.as_row`."""


@dataclass(frozen=True)
class Audit:
    rows: tuple[DeviceAudit, ...]
    kafka_times: Mapping[Key, tuple[float, ...]] = field(default_factory=dict)
    """Kafka timestamps (epoch s, sorted) of each bronze copy; only with ``kafka_times=True``."""

    @property
    def expected(self) -> int:
        return sum(r.expected for r in self.rows)

    @property
    def missing(self) -> int:
        return sum(r.missing for r in self.rows)

    @property
    def silver_duplicates(self) -> int:
        return sum(r.silver_duplicates for r in self.rows)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.silver_duplicates == 0

    def table(self) -> list[dict[str, Any]]:
        return [r.as_row() for r in self.rows]

    def verdict(self) -> str:
        return verdict(self.table())

    def per_stream(self, figure: str) -> dict[str, int]:
        """One figure (``received``, ``silver_rows``, ...) summed per stream name."""
        totals = {s.name: 0 for s in DATA_STREAMS}
        for r in self.rows:
            totals[r.stream] = totals.get(r.stream, 0) + int(getattr(r, figure))
        return totals

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "verdict": self.verdict(),
                "ok": self.ok,
                "expected": self.expected,
                "missing": self.missing,
                "silver_duplicates": self.silver_duplicates,
                "rows": self.table(),
            },
            option=orjson.OPT_INDENT_2,
        )

    def write(self, path: Path) -> None:
        """``to_json`` into ``path`` (``spark.report --audit-json``), whole or not at all."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(self.to_json())
        partial.replace(path)

    @classmethod
    def from_json(cls, data: bytes) -> Audit:
        """The audit ``to_json`` wrote (its rows; ``missing_seqs`` and Kafka times stay out)."""
        rows = orjson.loads(data)["rows"]
        return cls(tuple(DeviceAudit(**{**r, "gap_ranges": tuple(r["gap_ranges"])}) for r in rows))

    @classmethod
    def read(cls, path: Path) -> Audit:
        return cls.from_json(path.read_bytes())


def verdict(rows: Sequence[Mapping[str, Any]]) -> str:
    """``audit: OK, N messages, 0 missing`` or what is missing and duplicated, and where."""
    total = sum(int(r["expected"]) for r in rows)
    missing = [r for r in rows if r["missing"]]
    doubled = [r for r in rows if r.get("silver_duplicates")]
    if not missing and not doubled:
        return f"audit: OK, {total:,} messages, 0 missing"
    parts = []
    if missing:
        where = "; ".join(
            f"{r['stream']}/{r['device_id']} {r['missing']} "
            f"({', '.join(list(r['gap_ranges'])[:3]) or 'at the end'})"
            for r in missing[:10]
        )
        lost = sum(int(r["missing"]) for r in missing)
        parts.append(f"audit: MISSING {lost:,} of {total:,} messages: {where}")
    if doubled:
        where = "; ".join(
            f"{r['stream']}/{r['device_id']} {r['silver_duplicates']}" for r in doubled[:10]
        )
        extra = sum(int(r["silver_duplicates"]) for r in doubled)
        head = "; DUPLICATED" if parts else f"audit: DUPLICATED in silver, of {total:,} messages:"
        parts.append(
            f"{head} {extra:,} rows ({where}); remove them with `python -m spark.maintain --dedupe`"
        )
    return "".join(parts)


def summary(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    def total(name: str) -> int:
        return sum(int(r.get(name) or 0) for r in rows)

    return [
        f"audit: {len({r['device_id'] for r in rows})} devices, {len(rows)} device streams; "
        f"{total('duplicates_removed'):,} duplicates removed, {total('late_rows'):,} rows came "
        f"late (in silver), {total('quarantined'):,} quarantined",
        verdict(rows),
    ]


# --- reading ------------------------------------------------------------------------------


def run(
    reader: LakeReader,
    manifest: Manifest | None = None,
    streams: tuple[Stream, ...] = DATA_STREAMS,
    kafka_times: bool = False,
) -> Audit:
    """Audit ``streams`` of the lake ``reader`` opens against ``manifest`` (if given)."""
    bounds = _bounds(manifest)
    raw = _RawKeys(reader, streams, kafka_times)
    rows: list[DeviceAudit] = []
    times: dict[Key, tuple[float, ...]] = {}
    for stream in streams:
        silver = reader.read(lake.silver(stream), ["device_id", "seq"])
        scope = bounds.get(stream.name) if bounds is not None else None
        if bounds is not None and scope is None:
            continue  # the manifest has no device on this stream
        bronze = raw.bronze.get(stream.name)
        rows += _stream_audit(
            stream.name,
            _scoped(silver, scope),
            late=_scoped(raw.late.get(stream.name), scope),
            bronze=_scoped(bronze, scope),
            quarantine=_scoped(raw.quarantine.get(stream.name), scope),
            scope=scope,
            bronze_present=raw.has_bronze,
        )
        if kafka_times and bronze is not None:
            times.update(_copy_times(stream.name, bronze))
    rows.sort(key=lambda r: (r.stream, r.device_id))
    return Audit(tuple(rows), times)


class _RawKeys:
    """``(device_id, seq)`` of the tables shared by all streams, split per stream name.

    Bronze and quarantine hold the payload as it came, so each is parsed here once.
    """

    def __init__(self, reader: LakeReader, streams: Iterable[Stream], kafka_times: bool) -> None:
        self._topics = {s.kafka_topic: s.name for s in streams}
        bronze_cols = ["topic", "value", "timestamp"] if kafka_times else ["topic", "value"]
        bronze = reader.read(lake.bronze(), bronze_cols)
        self.has_bronze = bronze is not None
        self.bronze = self._split(bronze, "value")
        quarantine = reader.read(lake.quarantine(), ["topic", "payload"])
        self.quarantine = self._split(quarantine, "payload")
        late = reader.read(lake.late(), ["stream", "device_id", "seq"])
        self.late: dict[str, pa.Table] = {}
        if late is not None:
            for name in pc.unique(late["stream"]).to_pylist():
                stream = self._topics.get(name, name)  # a stream name or its topic
                part = late.filter(pc.equal(late["stream"], name)).select(["device_id", "seq"])
                self.late[stream] = _concat(self.late.get(stream), part)

    def _stream_of(self, topic: str) -> str | None:
        # Tests and drills read prefixed topics (``<prefix>vehicle_data``).
        for name, stream in self._topics.items():
            if topic == name or topic.endswith(name):
                return stream
        return None

    def _split(self, table: pa.Table | None, payload: str) -> dict[str, pa.Table]:
        if table is None or table.num_rows == 0:
            return {}
        streams = [self._stream_of(t) for t in table["topic"].to_pylist()]
        devices: list[str | None] = []
        seqs: list[int | None] = []
        for value in table[payload].to_pylist():
            device, seq = _device_seq(value)
            devices.append(device)
            seqs.append(seq)
        columns = {
            "stream": pa.array(streams, pa.string()),
            "device_id": pa.array(devices, pa.string()),
            "seq": pa.array(seqs, pa.int64()),
        }
        if "timestamp" in table.column_names:
            columns["kafka_time"] = pc.cast(table["timestamp"], pa.timestamp("us", "UTC"))
        keyed = pa.table(columns)
        keyed = keyed.filter(pc.and_(pc.is_valid(keyed["device_id"]), pc.is_valid(keyed["seq"])))
        out = {}
        for stream in set(s for s in streams if s is not None):
            out[stream] = keyed.filter(pc.equal(keyed["stream"], stream)).drop_columns(["stream"])
        return out


def _device_seq(value: bytes | str | None) -> tuple[str | None, int | None]:
    """The device and seq a raw payload names, if it is a JSON object that names them."""
    if value is None:
        return None, None
    try:
        msg = orjson.loads(value)
        device, seq = msg["device_id"], msg["seq"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None, None
    if not isinstance(device, str) or not isinstance(seq, int) or isinstance(seq, bool):
        return None, None
    return device, seq


def _concat(a: pa.Table | None, b: pa.Table) -> pa.Table:
    return b if a is None else pa.concat_tables([a, b])


# --- counting -----------------------------------------------------------------------------

Bounds = dict[str, tuple[int, int]]
"""device_id → (first_seq, last_seq) of one stream."""


def _bounds(manifest: Manifest | None) -> dict[str, Bounds] | None:
    if manifest is None:
        return None
    out: dict[str, Bounds] = {}
    for e in manifest.expected():
        out.setdefault(e.stream, {})[e.device_id] = (e.first_seq, e.last_seq)
    return out


def _scoped(keys: pa.Table | None, scope: Bounds | None) -> pa.Table | None:
    """Only the rows of the run ``scope`` describes: its devices, each one's seq range."""
    if keys is None or scope is None:
        return keys
    devices = list(scope)
    bounds = pa.table(
        {
            "device_id": pa.array(devices, pa.string()),
            "_first": pa.array([scope[d][0] for d in devices], pa.int64()),
            "_last": pa.array([scope[d][1] for d in devices], pa.int64()),
        }
    )
    joined = keys.join(bounds, "device_id", join_type="inner")
    inside = pc.and_(
        pc.greater_equal(joined["seq"], joined["_first"]),
        pc.less_equal(joined["seq"], joined["_last"]),
    )
    return joined.filter(inside).drop_columns(["_first", "_last"])


def _per_device(keys: pa.Table | None) -> dict[str, int]:
    if keys is None or keys.num_rows == 0:
        return {}
    counted = keys.group_by("device_id").aggregate([("seq", "count")])
    return dict(
        zip(counted["device_id"].to_pylist(), counted["seq_count"].to_pylist(), strict=True)
    )


def _distinct_runs(keys: pa.Table | None) -> dict[str, list[tuple[int, int]]]:
    """Per device, its distinct seqs as sorted runs of consecutive numbers ``(first, last)``."""
    if keys is None or keys.num_rows == 0:
        return {}
    distinct = (
        keys.select(["device_id", "seq"])
        .group_by(["device_id", "seq"])
        .aggregate([])
        .sort_by([("device_id", "ascending"), ("seq", "ascending")])
    )
    device = distinct["device_id"].combine_chunks().dictionary_encode()
    codes = device.indices.to_numpy(zero_copy_only=False)
    names = device.dictionary.to_pylist()
    seq = distinct["seq"].to_numpy()
    # A run starts at a new device or where the seq is not the previous one plus one.
    starts = np.flatnonzero(
        np.concatenate(([True], (codes[1:] != codes[:-1]) | (seq[1:] != seq[:-1] + 1)))
    )
    ends = np.concatenate((starts[1:] - 1, [len(seq) - 1]))
    runs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        runs[names[codes[s]]].append((int(seq[s]), int(seq[e])))
    return runs


def _stream_audit(
    stream: str,
    silver: pa.Table | None,
    late: pa.Table | None,
    bronze: pa.Table | None,
    quarantine: pa.Table | None,
    scope: Bounds | None,
    bronze_present: bool,
) -> list[DeviceAudit]:
    runs = _distinct_runs(silver)
    silver_rows = _per_device(silver)
    late_rows = _per_device(late)
    bronze_rows = _per_device(bronze)
    quarantined = _per_device(quarantine)
    if scope is not None:
        devices: Iterable[str] = scope
    else:
        devices = set(runs) | set(late_rows) | set(bronze_rows) | set(quarantined)
    out = []
    for device in devices:
        have = runs.get(device, [])
        top = have[-1][1] if have else 0
        first, last = scope[device] if scope is not None else (1, top)
        holes = _holes(have, first, last)
        inside = [(a, b) for a, b in holes if b < top]  # below the highest seq received
        received = sum(b - a + 1 for a, b in have)
        rows = silver_rows.get(device, 0)
        quarantined_n = quarantined.get(device, 0)
        bronze_n = bronze_rows.get(device, 0)
        out.append(
            DeviceAudit(
                stream=stream,
                device_id=device,
                first_seq=first,
                expected=max(0, last - first + 1),
                received=received,
                missing=sum(b - a + 1 for a, b in holes),
                gap_ranges=tuple(sorted(f"{a}-{b}" for a, b in inside)),
                silver_rows=rows,
                silver_duplicates=rows - received,
                duplicates_removed=max(0, bronze_n - quarantined_n - rows) if bronze_present else 0,
                late_rows=late_rows.get(device, 0),
                quarantined=quarantined_n,
                bronze_rows=bronze_n,
                missing_seqs=tuple(holes),
            )
        )
    return out


def _holes(runs: list[tuple[int, int]], first: int, last: int) -> list[tuple[int, int]]:
    """The ranges of ``first..last`` that ``runs`` (sorted, disjoint) do not cover."""
    holes = []
    nxt = first
    for a, b in runs:
        if a > nxt:
            holes.append((nxt, min(a - 1, last)))
        nxt = max(nxt, b + 1)
        if nxt > last:
            break
    if nxt <= last:
        holes.append((nxt, last))
    return [(a, b) for a, b in holes if a <= b]


def _copy_times(stream: str, bronze: pa.Table) -> dict[Key, tuple[float, ...]]:
    times: dict[Key, list[float]] = defaultdict(list)
    epoch = pc.divide(pc.cast(bronze["kafka_time"], pa.int64()), 1_000_000.0).to_pylist()
    for device, seq, at in zip(
        bronze["device_id"].to_pylist(), bronze["seq"].to_pylist(), epoch, strict=True
    ):
        times[(stream, device, seq)].append(at)
    return {k: tuple(sorted(v)) for k, v in times.items()}
