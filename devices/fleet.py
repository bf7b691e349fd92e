"""Build a run from a loaded scenario: the SimPy environment, the world and every device."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime

import simpy

from contract.streams import EMERGENCY, GPS, TRAFFIC, VEHICLE, WEATHER
from devices import incidents, roadside, vehicle
from devices.emit import Device, Hub, Sink, Timestamps, rebooter
from devices.loader import Loaded
from devices.snapshots import Uploader
from devices.state import SeqState
from devices.traffic import Traffic
from devices.world import WeatherField, World


@dataclass
class Fleet:
    env: simpy.Environment
    hub: Hub
    world: World
    devices: list[Device]
    streams: dict[str, tuple[str, ...]]
    """Streams each device publishes (owned devices only)."""
    done: simpy.Event | None
    until: float | None
    uploader: Uploader | None = None
    cameras: list[roadside.Camera] = field(default_factory=list)


def shard_owner(shard: tuple[int, int] | None):
    if shard is None or shard[1] == 1:
        return lambda _device_id: True
    i, n = shard
    return lambda device_id: zlib.crc32(device_id.encode()) % n == i


def build(
    loaded: Loaded,
    sink: Sink,
    state: SeqState,
    env: simpy.Environment | None = None,
    start: datetime | None = None,
    shard: tuple[int, int] | None = None,
    uploader: Uploader | None = None,
) -> Fleet:
    sc = loaded.scenario
    env = env or simpy.Environment()
    start = start or sc.start
    hub = _hub(loaded, env, sink, state, start, shard)
    world, profiles = _world(loaded, start)
    # Started first, so at any instant the model has stepped before devices read it.
    env.process(world.traffic.run(env))
    parts = _Parts(hub)
    cams_by_route = _cameras(loaded, parts, world, uploader)
    if sc.weather is not None:
        _weather_stations(loaded, parts, world)
    trips = _vehicles(loaded, parts, world, profiles, cams_by_route)
    _incidents(loaded, parts, world)
    if sc.faults.reboot_per_hour > 0:
        for dev, proc in parts.rebootable:
            env.process(rebooter(env, dev, proc, sc.faults))
    state.prepare([(d, s) for d, kinds in parts.streams.items() for s in kinds])
    done = env.all_of(trips) if sc.duration_s is None and trips else None
    return Fleet(
        env, hub, world, parts.devices, parts.streams, done, sc.duration_s, uploader,
        parts.cameras,
    )  # fmt: skip


def _hub(
    loaded: Loaded,
    env: simpy.Environment,
    sink: Sink,
    state: SeqState,
    start: datetime,
    shard: tuple[int, int] | None,
) -> Hub:
    sc = loaded.scenario
    qos = {
        s.name: sc.mqtt.qos.get(s.name, sc.mqtt.default_qos)
        for s in (VEHICLE, GPS, TRAFFIC, WEATHER, EMERGENCY)
    }
    return Hub(
        env, sc.name, sc.seed, Timestamps(start), sink, state, qos, sc.faults,
        shard_owner(shard), year=start.year,
    )  # fmt: skip


def _world(loaded: Loaded, start: datetime) -> tuple[World, dict[str, vehicle.RoadProfile]]:
    """The weather field and the traffic model every device reads, and each route's limits."""
    sc, routes = loaded.scenario, loaded.routes
    first = next(iter(routes.values()))
    route_specs = {r.id: r for r in sc.routes}
    profiles = {rid: vehicle.RoadProfile(route, route_specs[rid]) for rid, route in routes.items()}
    weather = WeatherField(sc.weather, (first.lats[0], first.lons[0]), start)
    traffic = Traffic(sc.traffic, routes, route_specs, profiles, weather, start)
    return World(weather, traffic), profiles


@dataclass
class _Parts:
    """What the build steps collect: every device, the streams of those this shard owns, the
    processes a reboot may interrupt, and the cameras."""

    hub: Hub
    devices: list[Device] = field(default_factory=list)
    streams: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rebootable: list[tuple[Device, simpy.Process]] = field(default_factory=list)
    cameras: list[roadside.Camera] = field(default_factory=list)

    def add(self, device_id: str, kinds: tuple[str, ...]) -> Device:
        dev = self.hub.device(device_id)
        self.devices.append(dev)
        if dev.owned:
            self.streams[device_id] = kinds
        return dev


def _cameras(
    loaded: Loaded, parts: _Parts, world: World, uploader: Uploader | None
) -> dict[str, list[roadside.Camera]]:
    """Cameras at their spots and every ``every_km``; each route's, in distance order."""
    sc, routes, env = loaded.scenario, loaded.routes, parts.hub.env
    cams_by_route: dict[str, list[roadside.Camera]] = {rid: [] for rid in routes}
    for cset in sc.cameras:
        route = routes[cset.route]
        spots = [route.project(p.lat, p.lon)[0] for p in cset.at]
        if cset.every_km:
            spots += roadside.placements(route, cset.every_km)
        for d in sorted(spots):
            dev = parts.add(f"{sc.prefix}-cam-{len(parts.cameras) + 1:03d}", (TRAFFIC.name,))
            cam = roadside.Camera(
                dev, route, d, world.traffic, cset.interval_s, cset.snapshots, uploader
            )
            parts.cameras.append(cam)
            cams_by_route[cset.route].append(cam)
            parts.rebootable.append((dev, env.process(cam.run())))
    for cams in cams_by_route.values():
        cams.sort(key=lambda c: c.distance_m)
    return cams_by_route


def _weather_stations(loaded: Loaded, parts: _Parts, world: World) -> None:
    sc, routes, env = loaded.scenario, loaded.routes, parts.hub.env
    assert sc.weather is not None
    placed: list[tuple[float, float]] = []
    for spec in sc.routes:
        route = routes[spec.id]
        for d in roadside.placements(route, sc.weather.every_km):
            lat, lon, _ = route.locate(d)
            if any(abs(lat - a) < 0.03 and abs(lon - b) < 0.05 for a, b in placed):
                continue  # routes share stretches near Birmingham: one station is enough
            placed.append((lat, lon))
            urban = d < 8000 or d > route.length_m - 8000
            dev = parts.add(f"{sc.prefix}-wx-{len(placed):03d}", (WEATHER.name,))
            proc = env.process(
                roadside.weather_station(dev, lat, lon, urban, world, sc.weather.interval_s)
            )
            parts.rebootable.append((dev, proc))


def _vehicles(
    loaded: Loaded,
    parts: _Parts,
    world: World,
    profiles: dict[str, vehicle.RoadProfile],
    cams_by_route: dict[str, list[roadside.Camera]],
) -> list[simpy.Process]:
    """Every vehicle of every fleet, numbered across fleets; their trips' processes."""
    sc, routes, env = loaded.scenario, loaded.routes, parts.hub.env
    trips: list[simpy.Process] = []
    n = 0
    for fleet in sc.vehicles:
        route = routes[fleet.route]
        intervals = ((VEHICLE.name, fleet.intervals_s.vehicle), (GPS.name, fleet.intervals_s.gps))
        kinds = tuple(s for s, iv in intervals if iv)
        weights = [m.weight for m in fleet.mix]
        for k in range(fleet.count):
            n += 1
            dev = parts.add(f"{sc.prefix}-veh-{n:05d}", kinds)
            model = dev.rng.choices(fleet.mix, weights)[0]
            jitter = dev.rng.uniform(0, fleet.depart.jitter_s) if fleet.depart.jitter_s else 0.0
            trip = vehicle.Trip(
                route,
                profiles[fleet.route],
                fleet.depart.first_s + k * fleet.depart.every_s + jitter,
                fleet.intervals_s,
                fleet.gps_dropout_prob,
            )
            proc = env.process(vehicle.vehicle(dev, model, trip, world, cams_by_route[fleet.route]))
            trips.append(proc)
            parts.rebootable.append((dev, proc))
    return trips


def _incidents(loaded: Loaded, parts: _Parts, world: World) -> None:
    spec, routes, env = loaded.scenario.incidents, loaded.routes, parts.hub.env
    if not spec.enabled or not (spec.rate_per_hour > 0 or spec.planned):
        return
    dev = parts.add(f"{loaded.scenario.prefix}-incidents", (EMERGENCY.name,))
    if spec.rate_per_hour > 0:
        env.process(incidents.generator(dev, spec, list(routes.values()), world))
    if spec.planned:
        env.process(incidents.planned(dev, spec, routes, world))
