"""Vehicles: drive a real route by distance and report on the ``vehicle`` and ``gps`` streams.

Speed follows the traffic model's cell the car is in (``devices.traffic``: the limit in free
flow, lowered by rain, snow and queues), times each driver's own habit; it changes within
acceleration and braking limits, and the car brakes in time for lower limits, for a slower
cell ahead and for the end. The car counts toward its cell's density.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from contract.streams import GPS, VEHICLE
from devices.emit import Device
from devices.geo import M_PER_DEG_LAT, Route
from devices.scenario import RouteSpec, StreamIntervals, VehicleModel
from devices.world import World

KMH = 1 / 3.6
BRAKE = 1.5  # m/s², the comfortable deceleration drivers plan with
MAX_BRAKE = 3.0  # m/s², what they use when the plan runs late (discrete steps)
ACCEL = {"car": 1.6, "van": 1.2, "truck": 0.6, "bus": 0.7, "motorcycle": 2.5, "emergency": 2.0}
TYPE_LIMIT_KMH = {"truck": 90.0, "bus": 100.0}  # UK HGV limiters: 56 mph, coaches 62 mph
# (consumption per 100 km at 100 km/h, tank or battery size): litres or kWh
FUEL = {
    "petrol": (6.5, 50.0),
    "diesel": (5.6, 55.0),
    "hybrid": (4.4, 43.0),
    "electric": (17.0, 60.0),
}
HEAVY_FUEL = {"van": (9.0, 70.0), "truck": (30.0, 400.0), "bus": (28.0, 300.0)}


class RoadProfile:
    """Speed limits along a route: the lowest applicable zone wins; the base limit elsewhere."""

    def __init__(self, route: Route, spec: RouteSpec) -> None:
        length = route.length_m
        zones = [
            (0.0, spec.urban_start_km * 1000, spec.urban_limit_kmh * KMH),
            (length - spec.urban_end_km * 1000, length, spec.urban_limit_kmh * KMH),
            *(
                (z.from_km * 1000, z.to_km * 1000, z.limit_kmh * KMH)
                for z in spec.zones
                if z.limit_kmh is not None
            ),
        ]
        self.zones = sorted(z for z in zones if z[1] > z[0])
        self.starts = [z[0] for z in self.zones]
        self.base = spec.limit_kmh * KMH
        self.length = length

    def limit(self, d: float) -> float:
        """The speed limit (m/s) at ``d``."""
        limit = self.base
        for z0, z1, lim in self.zones:
            if z0 <= d < z1 and lim < limit:
                limit = lim
        return limit

    def cap(self, d: float, scale: float) -> float:
        """Highest speed (m/s) allowed at ``d`` for a driver whose limits are scaled by ``scale``,
        braking in time for lower limits within the next 1.5 km and for the end of the route."""
        cap = self.limit(d) * scale
        i = bisect_right(self.starts, d)
        for z0, _z1, lim in self.zones[i:]:
            if z0 - d > 1500:
                break
            cap = min(cap, math.sqrt((lim * scale) ** 2 + 2 * BRAKE * (z0 - d)))
        remaining = self.length - d
        if remaining < 400:
            cap = min(cap, max(2.0, math.sqrt(2 * BRAKE * max(0.0, remaining))))
        return cap


@dataclass(frozen=True)
class Trip:
    route: Route
    profile: RoadProfile
    depart_s: float
    intervals: StreamIntervals
    gps_dropout_prob: float


def vehicle(dev: Device, model: VehicleModel, trip: Trip, world: World, cameras: list):
    """A SimPy process: wait for departure, drive, publish, stop at the destination."""
    env, rng, route, profile = dev.hub.env, dev.rng, trip.route, trip.profile
    year = rng.randint(*model.years)
    vtype, fuel_type = model.vehicle_type, model.fuel_type
    per_100km, capacity = HEAVY_FUEL.get(vtype, FUEL[fuel_type])
    if fuel_type == "electric":
        per_100km, capacity = FUEL["electric"]
    fuel_pct = rng.uniform(45.0, 100.0)
    odometer = max(0, dev.hub.year - year) * rng.uniform(7000, 16000) + rng.uniform(0, 5000)
    driver = min(1.1, max(0.88, rng.gauss(1.0, 0.05)))
    type_cap = TYPE_LIMIT_KMH.get(vtype, 999.0) * KMH
    accel = ACCEL.get(vtype, 1.5)
    base_hdop = rng.uniform(0.7, 1.4)
    iv, ig = trip.intervals.vehicle, trip.intervals.gps
    tick = min(i for i in (iv, ig) if i) if (iv or ig) else 5.0
    substeps = max(1, math.ceil(tick / 2.0))
    h = tick / substeps

    yield from dev.sleep(trip.depart_s)
    trip_id = f"{dev.id}-t{dev.hub.state.next_trip(dev.id)}"
    static = {"make": model.make, "model": model.model, "year": year, "fuel_type": fuel_type}
    d = v = 0.0
    next_v = next_g = env.now
    gps_out_until = -1.0
    cam_i = 0
    lat, lon, heading = route.locate(0.0)
    traffic = world.traffic
    cells, speeds, fleet = traffic.routes[route.route_id], traffic.speeds, traffic.fleet
    cell_m, first, last = cells.cell_m, cells.first, cells.first + cells.n - 1
    cell = cells.index(0.0)
    fleet[cell] += 1
    arrived = False
    while True:
        now = env.now
        if dev.up:
            speed_kmh = round(v * 3.6, 1)
            if iv and (now >= next_v or arrived):
                fields = {"latitude": round(lat, 6), "longitude": round(lon, 6)}
                fields["speed_kmh"] = speed_kmh
                fields["heading_deg"] = round(heading, 1)
                fields.update(static)
                fields["vehicle_type"] = vtype
                fields["odometer_km"] = round(odometer, 2)
                fields["fuel_level_pct"] = round(fuel_pct, 2)
                fields["route_id"] = route.route_id
                fields["trip_id"] = trip_id
                fields["distance_km"] = round(d / 1000, 3)
                dev.emit(VEHICLE, fields)
            if ig and (now >= next_g or arrived):
                if now < gps_out_until:
                    pass
                elif not arrived and rng.random() < trip.gps_dropout_prob:
                    gps_out_until = now + rng.uniform(5.0, 40.0)  # tunnel, bridge, urban canyon
                else:
                    hdop = min(5.0, max(0.5, base_hdop + rng.gauss(0, 0.15)))
                    sigma = 2.5 * hdop / M_PER_DEG_LAT
                    k = math.cos(math.radians(lat))
                    course = heading + rng.gauss(0, 1.5) if v > 1.5 else heading
                    dev.emit(
                        GPS,
                        {
                            "latitude": round(lat + rng.gauss(0, sigma), 6),
                            "longitude": round(lon + rng.gauss(0, sigma / k), 6),
                            "speed_kmh": round(max(0.0, v * 3.6 + rng.gauss(0, 0.4)), 1),
                            "heading_deg": round(course % 360.0, 1),
                            "vehicle_type": vtype,
                            "hdop": round(hdop, 2),
                            "satellites": int(
                                min(20, max(4, round(15 - 3 * hdop + rng.gauss(0, 1))))
                            ),
                        },
                    )
        if iv and now >= next_v:
            next_v += iv
        if ig and now >= next_g:
            next_g += ig
        if arrived:
            fleet[cell] -= 1
            return
        d0 = d
        for _ in range(substeps):
            ahead = d + v * h  # plan one step ahead
            i = cells.index(ahead)
            target = min(profile.cap(ahead, driver), speeds[i] * driver, type_cap)
            if i < last:  # brake in time for a slower cell (the tail of a queue) ahead
                gap = (i + 1 - first) * cell_m - ahead
                target = min(target, math.sqrt((speeds[i + 1] * driver) ** 2 + 2 * BRAKE * gap))
            dv = target - v
            v_new = v + (min(dv, accel * h) if dv > 0 else max(dv, -MAX_BRAKE * h))
            d += (v + v_new) / 2 * h
            v = v_new
            if d >= route.length_m - 0.5:
                d, v, arrived = route.length_m, 0.0, True
                break
        moved_km = (d - d0) / 1000
        odometer += moved_km
        burn = per_100km * (0.8 + 0.25 * (v * 3.6 / 100) ** 2) * moved_km / 100
        fuel_pct = max(0.0, fuel_pct - 100 * burn / capacity)
        while cam_i < len(cameras) and cameras[cam_i].distance_m <= d:
            cameras[cam_i].observe(v * 3.6)
            cam_i += 1
        lat, lon, heading = route.locate(d)
        new_cell = cells.index(d)
        if new_cell != cell:
            fleet[cell] -= 1
            fleet[new_cell] += 1
            cell = new_cell
        yield from dev.sleep(tick)
