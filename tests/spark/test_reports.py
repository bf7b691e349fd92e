"""Reports on small known datasets give the numbers computed here independently."""

from __future__ import annotations

import math
from datetime import timedelta

from contract import VEHICLE
from spark.reports import audit, journeys
from spark.schema import silver_schema
from tests.spark.helpers import T0, vehicle

SPEEDS = [0.0, 30.0, 60.0, 0.0, 0.0, 45.0, 90.0, 1.0, 50.0, 40.0]


def frame(spark, messages):
    from datetime import datetime

    rows = []
    for m in messages:
        typed = dict(m, timestamp=datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")))
        rows.append((*(typed[f.name] for f in VEHICLE.fields), 0, 0, None, None, None, 0))
    return spark.createDataFrame(rows, silver_schema(VEHICLE))


def test_journey_figures_match_the_generated_trip(spark) -> None:
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
    (row,) = journeys.build(frame(spark, msgs)).collect()
    assert math.isclose(row.distance_km, 1.5 * (len(SPEEDS) - 1))
    assert math.isclose(row.duration_min, len(SPEEDS) - 1)
    assert math.isclose(row.avg_speed_kmh, sum(SPEEDS) / len(SPEEDS))
    assert row.max_speed_kmh == max(SPEEDS)
    assert math.isclose(row.fuel_used_pct, 0.5 * (len(SPEEDS) - 1))
    # stopped runs (< 2 km/h): [0], [0, 0], [1] → 3 stops
    assert row.stops == 3


def test_audit_counts_gaps_duplicates_late_and_quarantine(spark) -> None:
    silver = frame(spark, [vehicle("a1", s, T0) for s in (1, 2, 3, 5, 6, 9)])
    late = frame(spark, [vehicle("a1", 4, T0)])
    # Kafka held 12 records: the 7 kept, 1 quarantined (seq 7, malformed) and 4 extra copies.
    bronze_values = [
        (f'{{"device_id": "a1", "seq": {s}}}'.encode(),)
        for s in (1, 1, 2, 3, 3, 4, 5, 6, 7, 9, 9, 9)
    ]
    bronze = spark.createDataFrame(bronze_values, "value binary")
    quarantine = spark.createDataFrame([('{"device_id": "a1", "seq": 7}',)], "payload string")
    layers = {
        "vehicle": {"silver": silver, "late": late, "bronze": bronze, "quarantine": quarantine}
    }
    manifest = {"a1": {"vehicle": {"published": 10, "last_seq": 10}}}
    (row,) = audit.build(spark, layers, manifest).collect()
    assert row.expected == 10
    assert row.received == 7  # 1,2,3,4(late),5,6,9
    assert row.missing == 3  # 7, 8 and 10
    assert list(row.gap_ranges) == ["7-8"]
    assert row.duplicates_removed == 12 - 1 - 1 - 6
    line = audit.verdict([row.asDict(recursive=True)])
    assert line.startswith("audit: MISSING 3 of 10 messages: vehicle/a1 3 (7-8)")
    # A second run of the same device: only its own seq range is expected, and devices the
    # manifest does not name are left out.
    other = frame(spark, [vehicle("b2", s, T0) for s in (1, 2)])
    rerun = {"a1": {"vehicle": {"published": 2, "first_seq": 5, "last_seq": 6}}}
    (again,) = audit.build(spark, {"vehicle": {"silver": silver.union(other)}}, rerun).collect()
    assert (again.device_id, again.expected, again.received, again.missing) == ("a1", 2, 2, 0)
    assert again.silver_rows == 2  # seqs 5 and 6, not the earlier run's
    ok = audit.build(spark, {"vehicle": {"silver": silver.where("seq <= 3")}}, None).collect()
    assert (
        audit.verdict([r.asDict(recursive=True) for r in ok]) == "audit: OK, 3 messages, 0 missing"
    )
