"""The bridge's results reach its tests and benchmarks as a JSON file, never a log line."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.__main__ import parse_args, write_summary
from drills.harness import BridgeRun


def test_the_bridge_run_reads_the_summary_the_bridge_writes(tmp_path: Path) -> None:
    run = BridgeRun({}, ["--idle-exit", "1"], tmp_path / "bridge.log")
    assert run.argv[-2:] == ["--summary", str(tmp_path / "bridge.summary.json")]
    assert parse_args(run.argv[3:]).summary == run.summary_file
    assert run.final_stats() == {}  # no summary: the bridge has not exited cleanly

    write_summary(run.summary_file, {"busy_s": 1.25, "counts": {"received": 3, "acked": 3}})
    assert json.loads(run.summary_file.read_text())["busy_s"] == 1.25
    assert run.final_stats() == {"received": 3, "acked": 3, "busy_s": 1.25}
    assert [p.name for p in tmp_path.iterdir()] == ["bridge.summary.json"]  # no partial file
