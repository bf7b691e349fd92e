"""Silver as a reader sees it during a benchmark: which rows have landed and how long after
their event time each became readable."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import unquote

import pyarrow.dataset as ds
import pyarrow.fs

from contract import DATA_STREAMS
from drills.flow import s3_filesystem
from spark.lake import silver
from spark.reader import LakeReader


class SilverWatch:
    """Follows a lake's silver tables, commit by commit. Each row of a commit gets latency = the
    commit's timestamp − the row's event time: Delta stamps a commit as it writes it, the moment
    its rows become readable, so the figure does not depend on how often this watch looks.
    ``seen_latencies`` are the same rows against when a poll first saw their commit (a poll
    every second or so adds up to that much), kept beside them for comparison."""

    def __init__(self, env: Mapping[str, str], root_uri: str) -> None:
        self.reader = LakeReader.from_env(env, root_uri)
        self.s3 = s3_filesystem(env)
        self.versions: dict[str, int] = {}
        self.latencies: list[float] = []
        self.seen_latencies: list[float] = []
        self.rows = 0
        # When the newest row became readable: its commit's timestamp, as for the latencies.
        self.last_row_at = 0.0

    def restart(self) -> None:
        """Count from here: rows and latencies so far (the warm-up's) are forgotten."""
        self.rows = 0
        self.latencies = []
        self.seen_latencies = []
        self.last_row_at = 0.0

    def poll(self) -> None:
        now = time.time()
        for stream in DATA_STREAMS:
            table = self.reader.table(silver(stream), refresh=True)
            if table is None:
                continue
            newest = table.version()
            base = table.table_uri.removeprefix("s3://").removeprefix("s3a://").rstrip("/")
            for version in range(self.versions.get(stream.name, -1) + 1, newest + 1):
                committed_at, files = self.commit(base, version)
                stamps = event_times(self.s3, [f"{base}/{f}" for f in files])
                self.rows += len(stamps)
                if stamps:
                    self.last_row_at = max(self.last_row_at, committed_at)
                self.latencies += [committed_at - t for t in stamps]
                self.seen_latencies += [now - t for t in stamps]
            self.versions[stream.name] = newest

    def commit(self, table: str, version: int) -> tuple[float, list[str]]:
        """A commit's timestamp (s) and the files it added, from its JSON file in ``_delta_log``
        (delta-rs gives a version's whole snapshot, not what one commit added)."""
        with self.s3.open_input_stream(f"{table}/_delta_log/{version:020d}.json") as f:
            actions = [json.loads(line) for line in f.read().splitlines() if line.strip()]
        stamp = next(a["commitInfo"]["timestamp"] for a in actions if "commitInfo" in a)
        added = [unquote(a["add"]["path"]) for a in actions if "add" in a]
        return stamp / 1000, added


def event_times(s3: pyarrow.fs.FileSystem, paths: list[str]) -> list[float]:
    """The ``timestamp`` column of these Parquet files, as Unix seconds."""
    if not paths:
        return []
    column = ds.dataset(paths, format="parquet", filesystem=s3).to_table(columns=["timestamp"])
    out = []
    for stamp in column.column("timestamp").to_pylist():
        when = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        out.append(when.timestamp())
    return out


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]
