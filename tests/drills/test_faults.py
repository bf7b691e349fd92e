"""The drills' verdict: each fault charged with what it cost, one line, the exit code, on a
small Delta lake written with delta-rs (no servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityconf.errors import UserError
from contract.manifest import Manifest
from drills.faults import Fault, charge, conclude
from spark.lake import Lake
from spark.reader import LakeReader
from tests.spark import lake_helpers


def faults(t0: float, recovered: bool = True) -> list[Fault]:
    def probe() -> int:
        return 0

    out = [Fault(name, lambda: None, probe) for name in ("bridge kill -9", "Kafka restart")]
    for fault, at in zip(out, (t0 + 1.5, t0 + 10.0), strict=True):
        fault.injected_at, fault.recovery_s = at, 2.0 if recovered else None
    return out


def test_a_clean_run_is_ok_and_names_the_copies_removed_before_silver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = lake_helpers.KAFKA_T0.timestamp()
    lake_helpers.silver(tmp_path, "vehicle", [("v1", s) for s in (1, 2, 3)])
    lake_helpers.bronze(tmp_path, "vehicle", [("v1", 1), ("v1", 2), ("v1", 3), ("v1", 3)],
                        at=[1.0, 2.0, 3.0, 12.0])  # fmt: skip
    manifest = Manifest.from_counters({"v1": {"vehicle": {"published": 3, "last_seq": 3}}}, {})
    plan = faults(t0)
    result = charge(LakeReader(Lake(str(tmp_path))), manifest, plan)
    assert [(f.lost, f.duplicated) for f in plan] == [(0, 0), (0, 1)]
    assert conclude("chaos", str(tmp_path), plan, result, tmp_path) == 0
    out = capsys.readouterr().out
    assert "chaos: OK: 0 missing, 0 duplicated in silver, 1 duplicates removed before silver" in out


def test_a_loss_fails_the_drill_and_a_fault_never_recovered_from_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = lake_helpers.KAFKA_T0.timestamp()
    lake_helpers.silver(tmp_path, "vehicle", [("v1", s) for s in (1, 2, 4)])
    lake_helpers.bronze(tmp_path, "vehicle", [("v1", 1), ("v1", 2), ("v1", 4)], at=[1.0, 2.0, 4.0])
    manifest = Manifest.from_counters({"v1": {"vehicle": {"published": 4, "last_seq": 4}}}, {})
    reader = LakeReader(Lake(str(tmp_path)))
    plan = faults(t0)
    result = charge(reader, manifest, plan)
    assert [f.lost for f in plan] == [1, 0]  # seq 3, after seq 2 reached Kafka past the kill
    assert conclude("cluster chaos", str(tmp_path), plan, result, tmp_path) == 1
    assert "cluster chaos: FAILED: 1 missing, 0 duplicated in silver" in capsys.readouterr().out
    stuck = faults(t0, recovered=False)
    with pytest.raises(UserError, match=f"a component did not recover; logs in {tmp_path}"):
        conclude("chaos", str(tmp_path), stuck, charge(reader, manifest, stuck), tmp_path)
