"""Load a scenario YAML and its GeoJSON routes; every problem becomes one ``ScenarioError``.

The error names the file, the field path and a fix, so the CLI prints one line and exits 2.

Coordinate order rule: GeoJSON is [longitude, latitude]. A route is refused as *out of range*
when any longitude is outside [-180, 180] or any latitude outside [-90, 90]. It is refused as
*lat/lon order* when some vertex lies outside the scenario's ``bounds`` box (default: Great
Britain and Ireland) while every vertex, read the other way round, lies inside it. A route
outside the box either way is refused as *outside the scenario bounds*.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from cityconf.errors import BAD_INPUT, UserError
from devices.geo import Route
from devices.scenario import Bounds, Scenario

SCENARIOS_DIR = Path(__file__).resolve().parents[1] / "scenarios"
MIN_VERTICES = 2


class ScenarioError(UserError):
    """A bad scenario file (exit 2), with its file and field kept apart for the tests and the
    live map."""

    def __init__(self, file: str | Path, field: str, problem: str, fix: str) -> None:
        self.file, self.field, self.problem, self.fix = str(file), field, problem, fix
        super().__init__(self.line(), BAD_INPUT)

    def line(self) -> str:
        return f"error: {self.file}: {self.field}: {self.problem}; {self.fix}"


@dataclass(frozen=True)
class Loaded:
    scenario: Scenario
    path: Path
    routes: dict[str, Route]


def resolve(name: str) -> Path:
    """A path, or a bare name looked up in ``scenarios/`` (with or without ``.yaml``)."""
    path = Path(name)
    if path.exists() or path.parent != Path("."):
        return path
    for candidate in (SCENARIOS_DIR / name, SCENARIOS_DIR / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    return path


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "literal[")):
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_FIXES = {
    "extra_forbidden": "remove it or correct its spelling",
    "missing": "add it",
    "literal_error": "use one of the allowed values",
    "string_pattern_mismatch": "use lower-case letters, digits and '-'",
}


def _from_validation(path: Path, exc: ValidationError) -> ScenarioError:
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    fix = _FIXES.get(kind)
    if fix is None:
        fix = (
            "use a value of the right type"
            if kind.endswith("_type") or "parsing" in kind
            else ("correct the value")
        )
    problem = err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        problem = "unknown key"
    return ScenarioError(path, _loc(err["loc"]), problem, fix)


def load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        hint = ", ".join(sorted(p.stem for p in SCENARIOS_DIR.glob("*.yaml")))
        raise ScenarioError(path, "(file)", "no such scenario file", f"use one of: {hint}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ScenarioError(path, where, "not valid YAML", "fix the YAML syntax") from None
    except UnicodeDecodeError:
        raise ScenarioError(path, "(file)", "not UTF-8 text", "save it as UTF-8") from None
    if not isinstance(data, dict):
        raise ScenarioError(path, "(top level)", "not a mapping", "write `key: value` lines")
    return data


def parse(path: Path, data: dict[str, Any]) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(path, exc) from None


def _lines(geo: Any) -> list[list[Any]] | str:
    """The line parts of a GeoJSON object, or a description of what it is instead."""
    if not isinstance(geo, dict):
        return f"a JSON {type(geo).__name__}"
    kind = geo.get("type")
    if kind == "FeatureCollection":
        parts: list[list[Any]] = []
        for feature in geo.get("features") or []:
            sub = _lines(feature)
            if isinstance(sub, str):
                return sub
            parts += sub
        return parts if parts else "an empty FeatureCollection"
    if kind == "Feature":
        return _lines(geo.get("geometry"))
    if kind == "LineString":
        return [geo.get("coordinates") or []]
    if kind == "MultiLineString":
        return [part or [] for part in geo.get("coordinates") or []] or [[]]
    return f"a {kind or 'untyped object'}"


def _check_coords(where: str, field: str, coords: list[Any], bounds: Bounds) -> None:
    def inside(lon: float, lat: float) -> bool:
        return bounds.min_lon <= lon <= bounds.max_lon and bounds.min_lat <= lat <= bounds.max_lat

    for i, c in enumerate(coords):
        ok = isinstance(c, list | tuple) and len(c) >= 2
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in c[:2])
        if not ok:
            raise ScenarioError(
                where, f"{field} vertex {i}", f"{c!r} is not a [lon, lat] pair", "fix the vertex"
            )
        lon, lat = c[0], c[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ScenarioError(
                where,
                f"{field} vertex {i}",
                f"coordinate [{lon}, {lat}] out of range",
                "longitude must be in [-180, 180] and latitude in [-90, 90]",
            )
    if all(inside(c[0], c[1]) for c in coords):
        return
    if all(inside(c[1], c[0]) for c in coords):
        raise ScenarioError(
            where,
            field,
            "coordinates are in lat/lon order",
            "GeoJSON wants [longitude, latitude]: swap every pair",
        )
    raise ScenarioError(
        where,
        field,
        "route lies outside the scenario bounds",
        "fix the coordinates or widen `bounds` in the scenario",
    )


def load_route(scenario_path: Path, index: int, spec: Any, bounds: Bounds) -> Route:
    field = f"routes[{index}].file"
    file = (scenario_path.parent / spec.file).resolve()
    if not file.is_file():
        raise ScenarioError(
            scenario_path,
            field,
            f"route file {spec.file} not found",
            "give a GeoJSON path relative to the scenario file",
        )
    try:
        geo = orjson.loads(file.read_bytes())
    except orjson.JSONDecodeError:
        raise ScenarioError(
            scenario_path, field, f"{spec.file} is not valid JSON", "give a GeoJSON file"
        ) from None
    parts = _lines(geo)
    if isinstance(parts, str):
        raise ScenarioError(
            scenario_path,
            field,
            f"{spec.file} holds {parts}, not a line",
            "give a LineString, a MultiLineString or a FeatureCollection of them",
        )
    coords = [c for part in parts for c in part]
    if not coords:
        raise ScenarioError(scenario_path, field, f"{spec.file} has an empty line", "add vertices")
    _check_coords(str(scenario_path), field, coords, bounds)
    points = [(float(c[0]), float(c[1])) for c in coords]
    # Consecutive duplicates (e.g. where MultiLineString parts join) would be zero-length.
    dedup = [points[0]] + [p for a, p in itertools.pairwise(points) if p != a]
    if len(dedup) < MIN_VERTICES:
        raise ScenarioError(
            scenario_path,
            field,
            f"{spec.file} has {len(dedup)} distinct vertex",
            f"a route needs at least {MIN_VERTICES} vertices",
        )
    props = geo.get("features", [{}])[0].get("properties") or {} if "features" in geo else {}
    return Route(spec.id, dedup, props)


def load(name: str | Path, overrides: dict[str, Any] | None = None) -> Loaded:
    """Load and check everything; raise ScenarioError on the first problem."""
    path = resolve(str(name))
    data = load_yaml(path)
    if overrides:
        data = {**data, **overrides}
    scenario = parse(path, data)
    ids = [r.id for r in scenario.routes]
    for kind in ("vehicles", "cameras"):
        for i, fleet in enumerate(getattr(scenario, kind)):
            if fleet.route not in ids:
                raise ScenarioError(
                    path, f"{kind}[{i}].route", f"route {fleet.route!r} is not defined",
                    f"use one of: {', '.join(ids)}",
                )  # fmt: skip
    routes = {
        spec.id: load_route(path, i, spec, scenario.bounds)
        for i, spec in enumerate(scenario.routes)
    }
    for i, planned in enumerate(scenario.incidents.planned):
        where = f"incidents.planned[{i}]"
        if planned.route not in routes:
            raise ScenarioError(
                path, f"{where}.route", f"route {planned.route!r} is not defined",
                f"use one of: {', '.join(ids)}",
            )  # fmt: skip
        length_km = routes[planned.route].length_m / 1000
        if planned.at_km > length_km:
            raise ScenarioError(
                path, f"{where}.at_km", f"beyond the end of route {planned.route}",
                f"use a distance up to {length_km:.1f}",
            )  # fmt: skip
    for i, fleet in enumerate(scenario.cameras):
        for j, point in enumerate(fleet.at):
            _, off = routes[fleet.route].project(point.lat, point.lon)
            if off > 2_000:
                raise ScenarioError(
                    path,
                    f"cameras[{i}].at[{j}]",
                    f"point is {off / 1000:.1f} km from route {fleet.route}",
                    "place cameras within 2 km of their route",
                )
    return Loaded(scenario, path, routes)
