"""The seq index's decisions (spark.seqindex): which devices' rows may be appended to silver
and which must go through the merge, and how a committed batch raises the index. Pure: no
Spark session, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contract import ALL_STREAMS, VEHICLE
from spark.seqindex import SeqIndex
from spark.summary import DeviceStats, Summary

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def batch(**devices: DeviceStats) -> Summary:
    summary = Summary()
    summary.devices[VEHICLE.name].update(devices)
    summary.newest[VEHICLE.name] = T0
    return summary


def test_rows_above_the_highest_seq_and_distinct_are_appended() -> None:
    index = SeqIndex(top={VEHICLE.name: {"van-1": 10}})
    fresh = batch(**{"van-1": DeviceStats(3, 3, 11, 13), "van-2": DeviceStats(2, 2, 1, 2)})
    assert index.suspects(VEHICLE, fresh) == set()


@pytest.mark.parametrize(
    "stats",
    [
        DeviceStats(3, 3, 10, 12),  # its lowest seq is already in silver: a redelivery
        DeviceStats(3, 3, 4, 6),  # wholly behind: a replay from a fresh checkpoint
        DeviceStats(3, 2, 11, 12),  # a seq twice within the batch: two bridges
    ],
)
def test_a_device_that_may_repeat_a_row_goes_through_the_merge(stats: DeviceStats) -> None:
    index = SeqIndex(top={VEHICLE.name: {"van-1": 10}})
    summary = batch(**{"van-1": stats, "van-2": DeviceStats(1, 1, 1, 1)})
    assert index.suspects(VEHICLE, summary) == {"van-1"}


def test_a_stream_without_seqs_merges_every_device() -> None:
    unsequenced = next((s for s in ALL_STREAMS if not s.sequenced), None)
    if unsequenced is None:
        pytest.skip("every stream of the contract carries seqs")
    assert SeqIndex().suspects(unsequenced, Summary()) is None


def test_a_committed_batch_raises_the_index_and_never_lowers_it() -> None:
    index = SeqIndex(top={VEHICLE.name: {"van-1": 10}}, newest={VEHICLE.name: T0})
    index.advance(batch(**{"van-1": DeviceStats(2, 2, 4, 5), "van-2": DeviceStats(2, 2, 1, 2)}))
    assert index.top[VEHICLE.name] == {"van-1": 10, "van-2": 2}
    later = batch(**{"van-1": DeviceStats(1, 1, 11, 11)})
    later.newest[VEHICLE.name] = T0 + timedelta(minutes=1)
    index.advance(later)
    assert index.top[VEHICLE.name]["van-1"] == 11
    assert index.newest[VEHICLE.name] == T0 + timedelta(minutes=1)
    assert index.entries() == 2


def test_newest_counts_the_batch_before_it_commits() -> None:
    index = SeqIndex(newest={VEHICLE.name: T0})
    summary = batch()
    summary.newest[VEHICLE.name] = T0 + timedelta(hours=2)
    assert index.newest_with((VEHICLE,), summary) == {VEHICLE: T0 + timedelta(hours=2)}
    assert index.newest == {VEHICLE.name: T0}  # not raised until the batch commits
