"""The benchmarks' view of silver: every committed row once, timed to its own commit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from benchmarks.watch import SilverWatch
from contract import VEHICLE
from drills.flow import lake_root
from spark.lake import Lake, silver
from spark.reader import storage_options


def test_each_row_is_timed_to_the_commit_that_made_it_readable(stack_env) -> None:
    root = lake_root(stack_env, f"test-watch-{uuid.uuid4().hex[:8]}")
    uri = Lake(root).object_uri(silver(VEHICLE))
    options = storage_options(stack_env)
    watch = SilverWatch(stack_env, root)

    def commit(*event_times: float) -> None:
        stamps = [datetime.fromtimestamp(t, UTC) for t in event_times]
        rows = pa.table({"timestamp": pa.array(stamps, pa.timestamp("us", "UTC"))})
        write_deltalake(uri, rows, mode="append", storage_options=options)

    now = time.time()
    commit(now - 30, now - 20)
    commit(now - 10)
    time.sleep(1.5)  # a poll that comes late must not change the figures
    watch.poll()
    commit(now - 5)
    watch.poll()
    watch.poll()  # nothing new: nothing counted twice

    history = DeltaTable(uri, storage_options=options).history()
    at = {h["version"]: h["timestamp"] / 1000 for h in history}
    expected = [at[0] - (now - 30), at[0] - (now - 20), at[1] - (now - 10), at[2] - (now - 5)]
    assert watch.rows == 4 and watch.last_row_at == at[2]
    assert sorted(watch.latencies) == pytest.approx(sorted(expected), abs=1e-3)
    late = [s - c for s, c in zip(watch.seen_latencies, watch.latencies, strict=True)]
    assert min(late[:3]) >= 1.4 and min(late) >= 0  # the late poll, not the commits
