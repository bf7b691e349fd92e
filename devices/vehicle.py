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
    car = Car(dev, model, trip, world, cameras)
    yield from dev.sleep(trip.depart_s)
    car.depart()
    while True:
        now = dev.hub.env.now
        if dev.up:
            car.report(now)
        car.schedule(now)
        if car.arrived:
            car.park()
            return
        car.drive()
        yield from dev.sleep(car.tick)


class Car:
    """One vehicle's state on its trip, and the steps of each tick: report, schedule, drive."""

    def __init__(
        self, dev: Device, model: VehicleModel, trip: Trip, world: World, cameras: list
    ) -> None:
        rng = dev.rng
        self.dev, self.model, self.trip, self.route = dev, model, trip, trip.route
        self.cameras = cameras
        # The draws keep their order: the same seed gives the same car.
        self.year = rng.randint(*model.years)
        self.vtype, self.fuel_type = model.vehicle_type, model.fuel_type
        self.per_100km, self.capacity = HEAVY_FUEL.get(self.vtype, FUEL[self.fuel_type])
        if self.fuel_type == "electric":
            self.per_100km, self.capacity = FUEL["electric"]
        self.fuel_pct = rng.uniform(45.0, 100.0)
        age = max(0, dev.hub.year - self.year)
        self.odometer = age * rng.uniform(7000, 16000) + rng.uniform(0, 5000)
        self.driver = min(1.1, max(0.88, rng.gauss(1.0, 0.05)))
        self.type_cap = TYPE_LIMIT_KMH.get(self.vtype, 999.0) * KMH
        self.accel = ACCEL.get(self.vtype, 1.5)
        self.base_hdop = rng.uniform(0.7, 1.4)
        iv, ig = trip.intervals.vehicle, trip.intervals.gps
        self.iv, self.ig = iv, ig
        self.tick = min(i for i in (iv, ig) if i) if (iv or ig) else 5.0
        self.substeps = max(1, math.ceil(self.tick / 2.0))
        self.h = self.tick / self.substeps
        traffic = world.traffic
        self.cells = traffic.routes[self.route.route_id]
        self.speeds, self.fleet = traffic.speeds, traffic.fleet
        self.d = self.v = 0.0
        self.arrived = False

    def depart(self) -> None:
        """At the start of the route: a new trip id, the first fixes, one car in the first cell."""
        dev, route = self.dev, self.route
        self.trip_id = f"{dev.id}-t{dev.hub.state.next_trip(dev.id)}"
        self.static = {
            "make": self.model.make, "model": self.model.model, "year": self.year,
            "fuel_type": self.fuel_type,
        }  # fmt: skip
        self.next_v = self.next_g = dev.hub.env.now
        self.gps_out_until = -1.0
        self.cam_i = 0
        self.lat, self.lon, self.heading = route.locate(0.0)
        self.cell = self.cells.index(0.0)
        self.fleet[self.cell] += 1

    def report(self, now: float) -> None:
        """The messages due now (and the last ones on arrival)."""
        if self.iv and (now >= self.next_v or self.arrived):
            self.report_vehicle()
        if self.ig and (now >= self.next_g or self.arrived):
            if now < self.gps_out_until:
                pass
            elif not self.arrived and self.dev.rng.random() < self.trip.gps_dropout_prob:
                self.gps_out_until = now + self.dev.rng.uniform(5.0, 40.0)  # tunnel, bridge
            else:
                self.report_gps()

    def report_vehicle(self) -> None:
        fields = {"latitude": round(self.lat, 6), "longitude": round(self.lon, 6)}
        fields["speed_kmh"] = round(self.v * 3.6, 1)
        fields["heading_deg"] = round(self.heading, 1)
        fields.update(self.static)
        fields["vehicle_type"] = self.vtype
        fields["odometer_km"] = round(self.odometer, 2)
        fields["fuel_level_pct"] = round(self.fuel_pct, 2)
        fields["route_id"] = self.route.route_id
        fields["trip_id"] = self.trip_id
        fields["distance_km"] = round(self.d / 1000, 3)
        self.dev.emit(VEHICLE, fields)

    def report_gps(self) -> None:
        """A fix with receiver noise: position scattered by HDOP, speed and course jitter."""
        rng, lat, v, heading = self.dev.rng, self.lat, self.v, self.heading
        hdop = min(5.0, max(0.5, self.base_hdop + rng.gauss(0, 0.15)))
        sigma = 2.5 * hdop / M_PER_DEG_LAT
        k = math.cos(math.radians(lat))
        course = heading + rng.gauss(0, 1.5) if v > 1.5 else heading
        self.dev.emit(
            GPS,
            {
                "latitude": round(lat + rng.gauss(0, sigma), 6),
                "longitude": round(self.lon + rng.gauss(0, sigma / k), 6),
                "speed_kmh": round(max(0.0, v * 3.6 + rng.gauss(0, 0.4)), 1),
                "heading_deg": round(course % 360.0, 1),
                "vehicle_type": self.vtype,
                "hdop": round(hdop, 2),
                "satellites": int(min(20, max(4, round(15 - 3 * hdop + rng.gauss(0, 1))))),
            },
        )

    def schedule(self, now: float) -> None:
        """The next report times of each stream that was due."""
        if self.iv and now >= self.next_v:
            self.next_v += self.iv
        if self.ig and now >= self.next_g:
            self.next_g += self.ig

    def park(self) -> None:
        self.fleet[self.cell] -= 1

    def drive(self) -> None:
        """One tick: move, burn fuel, pass cameras, change cell."""
        d0 = self.d
        self.move()
        moved_km = (self.d - d0) / 1000
        self.odometer += moved_km
        v = self.v
        burn = self.per_100km * (0.8 + 0.25 * (v * 3.6 / 100) ** 2) * moved_km / 100
        self.fuel_pct = max(0.0, self.fuel_pct - 100 * burn / self.capacity)
        cameras, d = self.cameras, self.d
        while self.cam_i < len(cameras) and cameras[self.cam_i].distance_m <= d:
            cameras[self.cam_i].observe(v * 3.6)
            self.cam_i += 1
        self.lat, self.lon, self.heading = self.route.locate(d)
        new_cell = self.cells.index(d)
        if new_cell != self.cell:
            self.fleet[self.cell] -= 1
            self.fleet[new_cell] += 1
            self.cell = new_cell

    def move(self) -> None:
        """Substeps of the tick: the speed follows the target within acceleration and braking."""
        cells, speeds, profile, driver = self.cells, self.speeds, self.trip.profile, self.driver
        cell_m, first, last = cells.cell_m, cells.first, cells.first + cells.n - 1
        d, v, h, length = self.d, self.v, self.h, self.route.length_m
        for _ in range(self.substeps):
            ahead = d + v * h  # plan one step ahead
            i = cells.index(ahead)
            target = min(profile.cap(ahead, driver), speeds[i] * driver, self.type_cap)
            if i < last:  # brake in time for a slower cell (the tail of a queue) ahead
                gap = (i + 1 - first) * cell_m - ahead
                target = min(target, math.sqrt((speeds[i + 1] * driver) ** 2 + 2 * BRAKE * gap))
            dv = target - v
            v_new = v + (min(dv, self.accel * h) if dv > 0 else max(dv, -MAX_BRAKE * h))
            d += (v + v_new) / 2 * h
            v = v_new
            if d >= length - 0.5:
                d, v, self.arrived = length, 0.0, True
                break
        self.d, self.v = d, v
