"""Bad scenarios: one line naming the file, the field and the fix; exit 2; nothing published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devices.loader import ScenarioError, load

REPO = Path(__file__).resolve().parents[2]
GOOD_LINE = [[-1.4313952, 52.4375205], [-1.431458, 52.4375867], [-1.4320, 52.4380]]


def _write(tmp: Path, scenario: dict, geo: object | None = None) -> Path:
    if geo is not None:
        (tmp / "route.geojson").write_text(json.dumps(geo))
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def _scenario(**changes: object) -> dict:
    base = {
        "name": "bad",
        "duration_s": 60,
        "routes": [{"id": "r", "file": "route.geojson"}],
        "vehicles": [{"route": "r", "count": 1}],
    }
    base.update(changes)
    return base


def _line(coords: list) -> dict:
    return {"type": "LineString", "coordinates": coords}


CASES = {
    "unknown key": (_scenario(colour="red"), _line(GOOD_LINE), "colour", "unknown key"),
    "nested unknown key": (
        _scenario(vehicles=[{"route": "r", "count": 1, "speed": 3}]),
        _line(GOOD_LINE),
        "vehicles[0].speed",
        "unknown key",
    ),
    "wrong type": (
        _scenario(vehicles=[{"route": "r", "count": "many"}]),
        _line(GOOD_LINE),
        "vehicles[0].count",
        "integer",
    ),
    "missing route file": (_scenario(), None, "routes[0].file", "not found"),
    "not a line": (
        _scenario(),
        {"type": "Point", "coordinates": [-1.4, 52.4]},
        "routes[0].file",
        "not a line",
    ),
    "out of range": (
        _scenario(),
        _line([[-1.43, 52.43], [181.0, 52.44]]),
        "routes[0].file vertex 1",
        "out of range",
    ),
    "lat/lon order": (
        _scenario(),
        _line([[c[1], c[0]] for c in GOOD_LINE]),
        "routes[0].file",
        "lat/lon order",
    ),
    "empty line": (_scenario(), _line([]), "routes[0].file", "empty line"),
    "too few vertices": (_scenario(), _line([GOOD_LINE[0]]), "routes[0].file", "at least 2"),
    "unknown route": (
        _scenario(vehicles=[{"route": "nope", "count": 1}]),
        _line(GOOD_LINE),
        "vehicles[0].route",
        "not defined",
    ),
    "zone with nothing in it": (
        _scenario(
            routes=[{"id": "r", "file": "route.geojson", "zones": [{"from_km": 0, "to_km": 1}]}]
        ),
        _line(GOOD_LINE),
        "routes[0].zones[0]",
        "give limit_kmh or lanes",
    ),
    "planned incident on an unknown route": (
        _scenario(incidents={"planned": [{"route": "nope", "at_km": 0, "start_s": 0}]}),
        _line(GOOD_LINE),
        "incidents.planned[0].route",
        "not defined",
    ),
    "planned incident past the end": (
        _scenario(incidents={"planned": [{"route": "r", "at_km": 5, "start_s": 0}]}),
        _line(GOOD_LINE),
        "incidents.planned[0].at_km",
        "beyond the end",
    ),
    "traffic profile of the wrong length": (
        _scenario(traffic={"profile": [1.0] * 23}),
        _line(GOOD_LINE),
        "traffic.profile",
        "at least 24",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_bad_input_names_file_field_and_fix(tmp_path: Path, case: str) -> None:
    scenario, geo, field, problem = CASES[case]
    path = _write(tmp_path, scenario, geo)
    with pytest.raises(ScenarioError) as err:
        load(path)
    line = err.value.line()
    assert line.startswith(f"error: {path}: {field}: ")
    assert problem in line
    assert "\n" not in line and line.count(";") >= 1


def test_good_minimal_scenario_loads(tmp_path: Path) -> None:
    loaded = load(_write(tmp_path, _scenario(), _line(GOOD_LINE)))
    assert loaded.routes["r"].length_m > 0


@pytest.mark.parametrize("case", ["unknown key", "lat/lon order"])
def test_cli_prints_one_line_and_exits_2(tmp_path: Path, case: str) -> None:
    scenario, geo, field, _ = CASES[case]
    path = _write(tmp_path, scenario, geo)
    done = subprocess.run(
        [sys.executable, "-m", "devices", "--scenario", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""  # nothing published
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"error: {path}: {field}: ")


def test_validate_and_bare_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devices", "--scenario", "london-birmingham.yaml", "--validate"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout
