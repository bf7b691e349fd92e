"""The incident generator: one device reporting incidents through their lifecycle.

Incidents arrive as a Poisson process on the scenario's routes (weighted by length), plus any
the scenario plans at a given place and time. Each one is reported, becomes active once
responders are on scene, and is resolved; every change is one message on the ``emergency``
stream. From the report until it is resolved it blocks lanes (or the hard shoulder) at its
place, which lowers the traffic model's capacity there (``Traffic.close``): a queue grows
upstream while demand exceeds what is left, and clears after the lanes reopen.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.streams import EMERGENCY
from devices.emit import Device
from devices.geo import Route
from devices.scenario import Incidents, PlannedIncident
from devices.world import World

# (minutes until active, minutes active, severity range)
LIFECYCLE = {
    "accident": ((3, 15), (20, 70), (2, 5)),
    "breakdown": ((5, 20), (10, 45), (1, 2)),
    "roadworks": ((1, 5), (60, 180), (1, 3)),
    "medical": ((2, 10), (15, 45), (2, 4)),
    "fire": ((3, 12), (30, 90), (3, 5)),
}
# Lanes blocked by severity 1..5 (0: the hard shoulder only): a judgement, documented in
# devices/README.md; most breakdowns reach the shoulder, serious collisions block two lanes.
LANES_CLOSED = {
    "accident": (0, 0, 1, 1, 2),
    "breakdown": (0, 1, 1, 1, 1),
    "roadworks": (1, 1, 1, 2, 2),
    "medical": (0, 0, 0, 1, 1),
    "fire": (1, 1, 1, 2, 2),
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


@dataclass(slots=True)
class Incident:
    incident_id: str
    type: str
    severity: int
    lat: float
    lon: float
    route_id: str
    distance_m: float
    radius_m: float
    lanes_closed: int
    status: str = "reported"


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
        severity = rng.randint(*sev)
        incident = Incident(
            incident_id=f"{dev.id}-{n:04d}",
            type=kind,
            severity=severity,
            lat=lat,
            lon=lon,
            route_id=route.route_id,
            distance_m=at,
            radius_m=spec.radius_km * 1000,
            lanes_closed=LANES_CLOSED[kind][severity - 1],
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


def planned(dev: Device, spec: Incidents, routes: dict[str, Route], world: World):
    """The scenario's planned incidents, each at its own place and time."""
    env = dev.hub.env
    for n, plan in enumerate(sorted(spec.planned, key=lambda p: p.start_s), 1):
        if plan.start_s > env.now:
            yield env.timeout(plan.start_s - env.now)
        incident = _planned_incident(f"{dev.id}-p{n:03d}", plan, routes[plan.route], spec)
        where = f"{WORDS[plan.type]} on the {_road(routes[plan.route])} at km {plan.at_km:.1f}"
        to_active = min(plan.responders_after_s, plan.duration_s)
        env.process(lifecycle(dev, incident, where, to_active, plan.duration_s - to_active, world))


def _planned_incident(
    incident_id: str, plan: PlannedIncident, route: Route, spec: Incidents
) -> Incident:
    lat, lon, _ = route.locate(plan.at_km * 1000)
    lanes = plan.lanes_closed
    return Incident(
        incident_id=incident_id,
        type=plan.type,
        severity=plan.severity,
        lat=lat,
        lon=lon,
        route_id=route.route_id,
        distance_m=plan.at_km * 1000,
        radius_m=spec.radius_km * 1000,
        lanes_closed=LANES_CLOSED[plan.type][plan.severity - 1] if lanes is None else lanes,
    )


def lifecycle(
    dev: Device, inc: Incident, where: str, to_active: float, active: float, world: World
):
    env, traffic = dev.hub.env, world.traffic
    blocked = traffic.close(
        inc.route_id, inc.distance_m, inc.lanes_closed, breakdown=inc.type == "breakdown"
    )
    _report(dev, inc, f"Reported: {where}, severity {inc.severity}{_lanes(inc)}")
    yield env.timeout(to_active)
    inc.status = "active"
    _report(dev, inc, f"Responders on scene: {where}")
    yield env.timeout(active)
    inc.status = "resolved"
    traffic.reopen(blocked)
    _report(dev, inc, f"Cleared: {where}")


def _lanes(inc: Incident) -> str:
    if inc.lanes_closed == 0:
        return ", hard shoulder blocked"
    return f", {inc.lanes_closed} lane{'s' if inc.lanes_closed > 1 else ''} closed"


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
