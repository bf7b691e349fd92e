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
    sc, routes = loaded.scenario, loaded.routes
    env = env or simpy.Environment()
    start = start or sc.start
    qos = {
        s.name: sc.mqtt.qos.get(s.name, sc.mqtt.default_qos)
        for s in (VEHICLE, GPS, TRAFFIC, WEATHER, EMERGENCY)
    }
    hub = Hub(
        env,
        sc.name,
        sc.seed,
        Timestamps(start),
        sink,
        state,
        qos,
        sc.faults,
        shard_owner(shard),
        year=start.year,
    )
    first = next(iter(routes.values()))
    route_specs = {r.id: r for r in sc.routes}
    profiles = {rid: vehicle.RoadProfile(route, route_specs[rid]) for rid, route in routes.items()}
    weather = WeatherField(sc.weather, (first.lats[0], first.lons[0]), start)
    traffic = Traffic(sc.traffic, routes, route_specs, profiles, weather, start)
    world = World(weather, traffic)
    # Started first, so at any instant the model has stepped before devices read it.
    env.process(traffic.run(env))
    prefix = sc.prefix
    devices: list[Device] = []
    streams: dict[str, tuple[str, ...]] = {}
    rebootable: list[tuple[Device, simpy.Process]] = []

    def add(device_id: str, kinds: tuple[str, ...]) -> Device:
        dev = hub.device(device_id)
        devices.append(dev)
        if dev.owned:
            streams[device_id] = kinds
        return dev

    cams_by_route: dict[str, list[roadside.Camera]] = {rid: [] for rid in routes}
    all_cams: list[roadside.Camera] = []
    for cset in sc.cameras:
        route = routes[cset.route]
        spots = [route.project(p.lat, p.lon)[0] for p in cset.at]
        if cset.every_km:
            spots += roadside.placements(route, cset.every_km)
        for d in sorted(spots):
            dev = add(f"{prefix}-cam-{len(all_cams) + 1:03d}", (TRAFFIC.name,))
            cam = roadside.Camera(dev, route, d, traffic, cset.interval_s, cset.snapshots, uploader)
            all_cams.append(cam)
            cams_by_route[cset.route].append(cam)
            rebootable.append((dev, env.process(cam.run())))
    for cams in cams_by_route.values():
        cams.sort(key=lambda c: c.distance_m)

    if sc.weather is not None:
        placed: list[tuple[float, float]] = []
        for spec in sc.routes:
            route = routes[spec.id]
            for d in roadside.placements(route, sc.weather.every_km):
                lat, lon, _ = route.locate(d)
                if any(abs(lat - a) < 0.03 and abs(lon - b) < 0.05 for a, b in placed):
                    continue  # routes share stretches near Birmingham: one station is enough
                placed.append((lat, lon))
                urban = d < 8000 or d > route.length_m - 8000
                dev = add(f"{prefix}-wx-{len(placed):03d}", (WEATHER.name,))
                proc = env.process(
                    roadside.weather_station(dev, lat, lon, urban, world, sc.weather.interval_s)
                )
                rebootable.append((dev, proc))

    trips: list[simpy.Process] = []
    n = 0
    for fleet in sc.vehicles:
        route = routes[fleet.route]
        kinds = tuple(
            s
            for s, iv in (
                (VEHICLE.name, fleet.intervals_s.vehicle),
                (GPS.name, fleet.intervals_s.gps),
            )
            if iv
        )
        weights = [m.weight for m in fleet.mix]
        for k in range(fleet.count):
            n += 1
            dev = add(f"{prefix}-veh-{n:05d}", kinds)
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
            rebootable.append((dev, proc))

    if sc.incidents.enabled and (sc.incidents.rate_per_hour > 0 or sc.incidents.planned):
        dev = add(f"{prefix}-incidents", (EMERGENCY.name,))
        if sc.incidents.rate_per_hour > 0:
            env.process(incidents.generator(dev, sc.incidents, list(routes.values()), world))
        if sc.incidents.planned:
            env.process(incidents.planned(dev, sc.incidents, routes, world))

    if sc.faults.reboot_per_hour > 0:
        for dev, proc in rebootable:
            env.process(rebooter(env, dev, proc, sc.faults))

    state.prepare([(d, s) for d, kinds in streams.items() for s in kinds])
    done = env.all_of(trips) if sc.duration_s is None and trips else None
    return Fleet(env, hub, world, devices, streams, done, sc.duration_s, uploader, all_cams)
