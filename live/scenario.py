"""What the page needs to know about a scenario before any message arrives: its routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from devices.loader import load


def scenario_view(name: str | Path, id_prefix: str | None = None) -> dict[str, Any]:
    """Name, device-id prefix and each route's GeoJSON (raises ScenarioError when invalid).

    The routes go to the page as their files hold them (already checked by the loader), so
    the map draws the same geometry the devices drive on.
    """
    loaded = load(name, {"id_prefix": id_prefix} if id_prefix else None)
    scenario = loaded.scenario
    routes = [
        {"id": spec.id, "geojson": orjson.loads((loaded.path.parent / spec.file).read_bytes())}
        for spec in scenario.routes
    ]
    return {
        "name": scenario.name,
        "description": scenario.description,
        "prefix": scenario.prefix,
        "routes": routes,
    }
