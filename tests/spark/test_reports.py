"""Reports on small known datasets give the numbers computed here independently."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

from contract import VEHICLE
from contract.manifest import Manifest
from spark import audit as core
from spark.lake import Lake
from spark.reader import LakeReader
from spark.reports import audit, journeys
from spark.schema import silver_schema
from tests.spark import lake_helpers
from tests.spark.helpers import T0, vehicle

SPEEDS = [0.0, 30.0, 60.0, 0.0, 0.0, 45.0, 90.0, 1.0, 50.0, 40.0]


def frame(spark, messages):
    from datetime import datetime

    schema = silver_schema(VEHICLE)
    rows = []
    for m in messages:
        typed = dict(m, timestamp=datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")))
        # Lineage and partition columns are not what a report reads: left empty.
        rows.append(tuple(typed.get(name) for name in schema.names))
    return spark.createDataFrame(rows, schema)


def test_journey_figures_match_the_generated_trip(local_spark) -> None:
    msgs = []
    for i, speed in enumerate(SPEEDS, start=1):
        msgs.append(
            vehicle(
                "j1",
                i,
                T0 + timedelta(minutes=i),
                speed_kmh=speed,
                distance_km=1.5 * i,
                fuel_level_pct=80.0 - 0.5 * i,
            )
        )
    msgs.reverse()  # arrival order must not matter
    (row,) = journeys.build(frame(local_spark, msgs)).collect()
    assert math.isclose(row.distance_km, 1.5 * (len(SPEEDS) - 1))
    assert math.isclose(row.duration_min, len(SPEEDS) - 1)
    assert math.isclose(row.avg_speed_kmh, sum(SPEEDS) / len(SPEEDS))
    assert row.max_speed_kmh == max(SPEEDS)
    assert math.isclose(row.fuel_used_pct, 0.5 * (len(SPEEDS) - 1))
    # stopped runs (< 2 km/h): [0], [0, 0], [1] → 3 stops
    assert row.stops == 3


def test_audit_counts_gaps_duplicates_late_and_quarantine(tmp_path: Path) -> None:
    # Silver holds the late row (seq 4) too; the late record only says it came late.
    lake_helpers.silver(tmp_path, "vehicle", [("a1", s) for s in (1, 2, 3, 4, 5, 6, 9)])
    lake_helpers.late(tmp_path, "vehicle", [("a1", 4)])
    # Kafka held 12 records: the 7 kept, 1 quarantined (seq 7, malformed) and 4 extra copies.
    lake_helpers.bronze(
        tmp_path, "vehicle", [("a1", s) for s in (1, 1, 2, 3, 3, 4, 5, 6, 7, 9, 9, 9)]
    )
    lake_helpers.quarantine(tmp_path, "vehicle", ['{"device_id": "a1", "seq": 7}'])
    reader = LakeReader(Lake(str(tmp_path)))
    manifest = Manifest.from_counters({"a1": {"vehicle": {"published": 10, "last_seq": 10}}}, {})
    (row,) = core.run(reader, manifest).table()
    assert row["expected"] == 10
    assert row["received"] == 7  # 1,2,3,4(late),5,6,9
    assert row["missing"] == 3  # 7, 8 and 10
    assert list(row["gap_ranges"]) == ["7-8"]
    assert row["duplicates_removed"] == 12 - 1 - 1 - 6
    assert row["late_rows"] == 1 and row["quarantined"] == 1 and row["silver_duplicates"] == 0
    line = audit.verdict([row])
    assert line.startswith("audit: MISSING 3 of 10 messages: vehicle/a1 3 (7-8)")
    # A second run of the same device: only its own seq range is expected, and devices the
    # manifest does not name are left out.
    lake_helpers.silver(tmp_path, "vehicle", [("b2", s) for s in (1, 2)])
    rerun = Manifest.from_counters(
        {"a1": {"vehicle": {"published": 2, "first_seq": 5, "last_seq": 6}}}, {}
    )
    (again,) = core.run(reader, rerun).rows
    assert (again.device_id, again.expected, again.received, again.missing) == ("a1", 2, 2, 0)
    assert again.silver_rows == 2  # seqs 5 and 6, not the earlier run's
    ok_root = tmp_path / "ok"
    lake_helpers.silver(ok_root, "vehicle", [("a1", s) for s in (1, 2, 3)])
    ok = core.run(LakeReader(Lake(str(ok_root))), None)
    assert audit.verdict(ok.table()) == "audit: OK, 3 messages, 0 missing"
