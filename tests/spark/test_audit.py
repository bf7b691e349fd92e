"""The one audit core (``spark.audit``) on small Delta lakes written with delta-rs: no servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.manifest import Manifest, ManifestError, merge
from spark import audit
from spark.lake import Lake
from spark.reader import LakeReader
from tests.spark import lake_helpers


def reader(root: Path) -> LakeReader:
    return LakeReader(Lake(str(root)))


def test_a_row_twice_in_silver_fails_the_audit_and_names_the_fix(tmp_path: Path) -> None:
    lake_helpers.silver(tmp_path, "gps", [("g1", s) for s in (1, 2, 3)])
    lake_helpers.silver(tmp_path, "gps", [("g1", 2), ("g1", 3)])  # a replayed batch
    result = audit.run(reader(tmp_path), None)
    (row,) = result.rows
    assert (row.received, row.silver_rows, row.silver_duplicates, row.missing) == (3, 5, 2, 0)
    assert not result.ok
    assert result.verdict().startswith("audit: DUPLICATED in silver, of 3 messages: 2 rows")
    assert "python -m spark.maintain --dedupe" in result.verdict()


def test_every_stream_and_device_of_the_manifest_is_audited(tmp_path: Path) -> None:
    lake_helpers.silver(tmp_path, "vehicle", [("v1", s) for s in range(1, 6)])
    lake_helpers.silver(tmp_path, "weather", [("w1", s) for s in (2, 3)])
    manifest = Manifest.from_counters(
        {
            "v1": {"vehicle": {"published": 5, "last_seq": 5}, "status": {"published": 2}},
            "w1": {"weather": {"published": 4, "last_seq": 4}},
            "t1": {"traffic": {"published": 3, "last_seq": 3}},  # nothing of it landed
        },
        {},
    )
    result = audit.run(reader(tmp_path), manifest)
    got = {(r.stream, r.device_id): (r.expected, r.received, r.missing) for r in result.rows}
    assert got == {
        ("traffic", "t1"): (3, 0, 3),
        ("vehicle", "v1"): (5, 5, 0),
        ("weather", "w1"): (4, 2, 2),
    }
    weather = next(r for r in result.rows if r.stream == "weather")
    assert weather.gap_ranges == ("1-1",) and weather.missing_seqs == ((1, 1), (4, 4))
    assert result.missing == 5 and result.expected == 12
    assert result.per_stream("received") == {
        "vehicle": 5, "gps": 0, "traffic": 0, "weather": 2, "emergency": 0
    }  # fmt: skip
    assert "traffic/t1 3 (at the end)" in result.verdict()


def test_kafka_times_of_each_copy_for_the_drill(tmp_path: Path) -> None:
    lake_helpers.silver(tmp_path, "vehicle", [("v1", 1), ("v1", 2)])
    lake_helpers.bronze(tmp_path, "vehicle", [("v1", 1), ("v1", 2), ("v1", 2)], at=[1.0, 2.0, 9.5])
    result = audit.run(reader(tmp_path), None, kafka_times=True)
    t0 = lake_helpers.KAFKA_T0.timestamp()
    assert result.kafka_times[("vehicle", "v1", 2)] == (t0 + 2.0, t0 + 9.5)
    assert result.rows[0].duplicates_removed == 1


def test_an_empty_lake_is_nothing_missing_without_a_manifest(tmp_path: Path) -> None:
    result = audit.run(reader(tmp_path), None)
    assert result.rows == () and result.verdict() == "audit: OK, 0 messages, 0 missing"


def test_manifests_of_consecutive_runs_merge_into_one_range(tmp_path: Path) -> None:
    first = Manifest.from_counters({"d": {"gps": {"published": 4, "last_seq": 4}}}, {})
    second = Manifest.from_counters(
        {"d": {"gps": {"published": 3, "first_seq": 5, "last_seq": 7}}}, {"sim_seconds": 1.0}
    )
    path = tmp_path / "second.json"
    second.write(path)
    assert Manifest.read(path) == second
    (expected,) = merge([first, Manifest.read(path)]).expected()
    assert (expected.first_seq, expected.last_seq) == (1, 7)
    assert Manifest.read_all([tmp_path / "never-written.json", path]).totals()["gps"] == 3


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (b"not json", "not JSON"),
        (b'{"runs": {}}', "no 'devices' object"),
        (b'{"devices": {"d": {"gps": {"last_seq": 3}}}}', "devices.d.gps: 'published' is missing"),
        (b'{"devices": {"d": {"gps": {"published": "x"}}}}', "must be integers"),
    ],
)
def test_a_bad_manifest_is_one_line_naming_file_and_field(
    tmp_path: Path, text: bytes, names: str
) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(text)
    with pytest.raises(ManifestError) as err:
        Manifest.read(path)
    assert str(path) in str(err.value) and names in str(err.value)
    assert "\n" not in str(err.value)


def test_the_drill_charges_each_loss_and_copy_to_the_fault_before_it(tmp_path: Path) -> None:
    from drills.faults import charged_audit as drill_audit

    t0 = lake_helpers.KAFKA_T0.timestamp()
    lake_helpers.silver(tmp_path, "vehicle", [("v1", s) for s in (1, 2, 4)])
    lake_helpers.bronze(
        tmp_path, "vehicle", [("v1", 1), ("v1", 2), ("v1", 2), ("v1", 4)], at=[1.0, 2.0, 12.0, 4.0]
    )
    manifest = Manifest.from_counters({"v1": {"vehicle": {"published": 4, "last_seq": 4}}}, {})
    faults = [("bridge kill -9", t0 + 1.5), ("Kafka restart", t0 + 10.0)]
    result = drill_audit(reader(tmp_path), manifest, faults)
    assert (result.missing, result.silver_duplicates) == (1, 0)
    # seq 3 lost after seq 2 reached Kafka (t0+2, after the bridge kill); the copy came at t0+12
    assert result.lost_by_fault == {"bridge kill -9": 1}
    assert result.duplicates_by_fault == {"Kafka restart": 1}


def test_the_audit_as_json_reads_back_with_the_same_verdict(tmp_path: Path) -> None:
    lake_helpers.silver(tmp_path, "vehicle", [("v1", s) for s in (1, 2, 4)])
    lake_helpers.silver(tmp_path, "gps", [("g1", 1), ("g1", 1)])
    manifest = Manifest.from_counters(
        {"v1": {"vehicle": {"published": 5, "last_seq": 5}}, "g1": {"gps": {"published": 1}}}, {}
    )
    result = audit.run(reader(tmp_path), manifest)
    path = tmp_path / "out" / "audit.json"
    result.write(path)
    back = audit.Audit.read(path)
    assert back.verdict() == result.verdict() and back.ok is result.ok is False
    assert back.table() == result.table()
    assert back.per_stream("received") == result.per_stream("received")
    assert (back.missing, back.silver_duplicates) == (2, 1)
    assert [p.name for p in path.parent.iterdir()] == ["audit.json"]  # no partial file
