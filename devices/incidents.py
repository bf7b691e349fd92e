"""The incident generator: one device reporting incidents through their lifecycle.

Incidents arrive as a Poisson process on the scenario's routes (weighted by length). Each one
is reported, becomes active once responders are on scene, and is resolved; every change is one
message on the ``emergency`` stream, and until it is resolved it slows traffic within its radius.
"""

from __future__ import annotations

import simpy

from contract.streams import EMERGENCY
from devices.emit import Device
from devices.geo import Route
from devices.scenario import Incidents
from devices.world import Incident, World

# (minutes until active, minutes active, severity range)
LIFECYCLE = {
    "accident": ((3, 15), (20, 70), (2, 5)),
    "breakdown": ((5, 20), (10, 45), (1, 2)),
    "roadworks": ((1, 5), (60, 180), (1, 3)),
    "medical": ((2, 10), (15, 45), (2, 4)),
    "fire": ((3, 12), (30, 90), (3, 5)),
}
WORDS = {
    "accident": "collision",
    "breakdown": "broken-down vehicle",
    "roadworks": "lane closure for roadworks",
    "medical": "medical emergency",
    "fire": "vehicle fire",
}


def _road(route: Route) -> str:
    refs = route.properties.get("road_refs") or []
    return "/".join(refs) if refs else route.route_id


def generator(dev: Device, spec: Incidents, routes: list[Route], world: World):
    env, rng = dev.hub.env, dev.rng
    weights = [r.length_m for r in routes]
    rate_s = spec.rate_per_hour / 3600.0
    n = 0
    while True:
        yield env.timeout(rng.expovariate(rate_s))
        n += 1
        route = rng.choices(routes, weights)[0]
        kind = rng.choice(spec.types)
        to_active, active_min, sev = LIFECYCLE[kind]
        at = rng.uniform(0.05, 0.95) * route.length_m
        lat, lon, _ = route.locate(at)
        incident = Incident(
            incident_id=f"{dev.id}-{n:04d}",
            type=kind,
            severity=rng.randint(*sev),
            lat=lat,
            lon=lon,
            route_id=route.route_id,
            radius_m=spec.radius_km * 1000,
        )
        where = f"{WORDS[kind]} on the {_road(route)} at km {at / 1000:.1f}"
        env.process(
            lifecycle(
                dev,
                incident,
                where,
                rng.uniform(*to_active) * 60,
                rng.uniform(*active_min) * 60,
                world,
            )
        )


def lifecycle(dev: Device, inc: Incident, where: str, to_active: float, active: float, world):
    env = dev.hub.env
    world.incidents.append(inc)
    _report(dev, inc, f"Reported: {where}, severity {inc.severity}")
    yield env.timeout(to_active)
    inc.status = "active"
    _report(dev, inc, f"Responders on scene: {where}")
    yield env.timeout(active)
    inc.status = "resolved"
    world.incidents.remove(inc)
    _report(dev, inc, f"Cleared: {where}")


def _report(dev: Device, inc: Incident, text: str) -> None:
    dev.emit(
        EMERGENCY,
        {
            "latitude": round(inc.lat, 6),
            "longitude": round(inc.lon, 6),
            "incident_id": inc.incident_id,
            "type": inc.type,
            "status": inc.status,
            "severity": inc.severity,
            "description": text,
            "route_id": inc.route_id,
            "radius_km": inc.radius_m / 1000,
        },
    )


__all__ = ["generator", "lifecycle", "simpy"]
