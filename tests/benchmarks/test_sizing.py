"""How the Spark stage sizes its batches from the bridge's rate of the same run."""

from __future__ import annotations

from benchmarks.results import BRIDGE, bridge_rate, row
from benchmarks.spark import DEFAULT_PER_BATCH, batch_size


def test_a_batch_is_what_the_trigger_gathers_at_the_goals_share_of_the_bridge() -> None:
    # 0.75 of 12,000 msg/s for a 10 s trigger
    assert batch_size(12_000.0) == 90_000
    assert isinstance(batch_size(12_345.6), int)


def test_without_a_bridge_figure_the_default_batch_is_used() -> None:
    assert batch_size(None) == DEFAULT_PER_BATCH


def test_the_bridge_rate_is_read_from_the_rows_measured_so_far() -> None:
    rows = [row("something else", 5.0, "s"), row(BRIDGE, 20_000.0, "msg/s")]
    assert bridge_rate(rows) == 20_000.0
    assert bridge_rate(rows[:1]) is None
