"""Background traffic: Daganzo's cell transmission model (CTM) on every route.

Daganzo, "The cell transmission model: a dynamic representation of highway traffic consistent
with the hydrodynamic theory", Transportation Research B 28(4), 1994. Each route is cut into
cells of a few hundred metres; each cell holds a number of vehicles and has a triangular
fundamental diagram from its free-flow speed ``vf`` (the limit), its capacity ``Q`` (per lane
times lanes) and its jam density ``kj``, so the backward wave speed is
``w = Q / (kj - Q / vf)`` (about 16 km/h for 2,000 veh/h/lane, 140 veh/km/lane, 112 km/h).
Every fixed step, a cell sends ``min(vf·k, Q)·dt`` vehicles and receives at most
``min(Q, w·(kj - k))·dt``; what flows is the smaller of the two. All routes' cells live in
one set of numpy arrays, so a step is a few vectorised operations whatever the fleet size.

The fleet's own vehicles count toward each cell's density (they are entered and left by the
vehicles themselves) and drive at their cell's speed; the model moves only the background
share of each flow (Daganzo's multi-commodity rule: the outflow splits like the cell's
occupants). Incidents multiply a cell's capacity (HCM 2010 Exhibit 10-17), and rain and snow
lower free-flow speed and capacity (HCM 2010 Exhibit 10-15; see ``weather_factors``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from devices.geo import Route
from devices.scenario import RouteSpec
from devices.scenario import Traffic as TrafficSpec
from devices.vehicle import RoadProfile
from devices.world import WeatherField

# Share of a direction's capacity left by an incident: HCM 2010 Exhibit 10-17 (also HCM 2000
# Exhibit 22-6), by lanes in the direction (2..8) and what is blocked: hard shoulder
# (disablement, accident), then one, two, three lanes.
HCM_INCIDENT = {
    2: (0.95, 0.81, 0.35, 0.00, 0.00),
    3: (0.99, 0.83, 0.49, 0.17, 0.00),
    4: (0.99, 0.85, 0.58, 0.25, 0.13),
    5: (0.99, 0.87, 0.65, 0.40, 0.20),
    6: (0.99, 0.89, 0.71, 0.50, 0.26),
    7: (0.99, 0.91, 0.75, 0.57, 0.36),
    8: (0.99, 0.93, 0.78, 0.63, 0.41),
}

# Rain (mm/h) upper bounds, capacity and free-flow speed factors. Capacity: HCM 2010 Exhibit
# 10-15 average reductions for rain up to 0.10 in/h (2.5 mm/h) 2 %, up to 0.25 in/h (6.35 mm/h)
# 7 %, heavier 14 %. Speed: 3-5 % in any rain (Smith et al., TRB 2004), 4-7 % in heavy rain
# (Agarwal, Maze and Souleyrette, 2005).
RAIN = ((2.54, 0.98, 0.97), (6.35, 0.93, 0.96), (np.inf, 0.86, 0.94))
# Snow, by precipitation as water (mm/h) at 10 mm of snow per mm of water: HCM 2010 Exhibit
# 10-15 snowfall bands 0.05, 0.10, 0.50 in/h -> 0.13, 0.25, 1.27 mm/h water; capacity -4, -9,
# -11, -22 %. Speed -8 % (light) to -13 % (heavy): Agarwal et al. 2005 report 11-15 % in heavy
# snow.
SNOW = ((0.13, 0.96, 0.92), (0.25, 0.91, 0.90), (1.27, 0.89, 0.88), (np.inf, 0.78, 0.87))
SNOW_BELOW_C = 0.5  # the same threshold weather stations use to call it snow


def incident_capacity(lanes: int, lanes_closed: int, shoulder_only_breakdown: bool) -> float:
    """Share of capacity left when ``lanes_closed`` of ``lanes`` are blocked (0: shoulder)."""
    if lanes_closed >= lanes:
        return 0.0
    row = HCM_INCIDENT[min(8, max(2, lanes))]
    if lanes_closed == 0:
        return row[0] if shoulder_only_breakdown else row[1]
    return row[1 + min(lanes_closed, 3)]


def weather_factors(precip: np.ndarray, temp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(capacity factor, free-flow speed factor) per cell from precipitation and temperature."""
    cap = np.ones_like(precip)
    speed = np.ones_like(precip)
    snow = temp <= SNOW_BELOW_C
    for table, kind in ((RAIN, ~snow), (SNOW, snow)):
        lower = 0.0
        for upper, c, v in table:
            band = kind & (precip > lower) & (precip <= upper)
            cap[band] = c
            speed[band] = v
            lower = upper
    return cap, speed


@dataclass(frozen=True, slots=True)
class RouteCells:
    """One route's cells: a slice of the model's arrays, all of one length."""

    route_id: str
    first: int
    n: int
    cell_m: float

    def index(self, distance_m: float) -> int:
        """The model-wide index of the cell holding ``distance_m``."""
        i = int(distance_m / self.cell_m)
        return self.first + min(max(i, 0), self.n - 1)


def _lanes_at(spec: RouteSpec, d: float) -> int:
    lanes = spec.lanes
    for z in spec.zones:
        if z.lanes is not None and z.from_km * 1000 <= d < z.to_km * 1000:
            lanes = z.lanes
    return lanes


class Traffic:
    """The cell transmission model of every route; ``run`` steps it inside the SimPy clock."""

    def __init__(
        self,
        spec: TrafficSpec,
        routes: dict[str, Route],
        route_specs: dict[str, RouteSpec],
        profiles: dict[str, RoadProfile],
        weather: WeatherField,
        start: datetime,
    ) -> None:
        self.spec, self.weather = spec, weather
        self.dt = spec.step_s
        self.start_hour = start.hour + start.minute / 60 + start.second / 3600
        self.routes: dict[str, RouteCells] = {}
        length, lanes, vf, lats, lons = [], [], [], [], []
        for rid, route in routes.items():
            cells = self._cut(route, profiles[rid], first=len(length))
            self.routes[rid] = cells
            for i in range(cells.n):
                mid = (i + 0.5) * cells.cell_m
                lat, lon, _ = route.locate(mid)
                length.append(cells.cell_m)
                lanes.append(_lanes_at(route_specs[rid], mid))
                vf.append(profiles[rid].limit(mid))
                lats.append(lat)
                lons.append(lon)
        self.length = np.array(length)
        self.lanes = np.array(lanes)
        self.vf0 = np.array(vf)
        """Free-flow speed (m/s) in dry weather: the limit."""
        self.cap0 = self.lanes * spec.capacity_per_lane_h / 3600
        """Capacity (veh/s) in dry weather without incidents."""
        self.kj = self.lanes * spec.jam_density_per_lane_km / 1000  # veh/m
        self.lats, self.lons = np.array(lats), np.array(lons)
        self.first = np.array([r.first for r in self.routes.values()])
        self.last = self.first + np.array([r.n for r in self.routes.values()]) - 1
        self.aadf = np.array(
            [route_specs[rid].aadf if spec.background else 0.0 for rid in self.routes]
        )
        hourly = np.array(spec.profile) / sum(spec.profile)
        # Hourly shares interpolated between hour centres, wrapped around midnight.
        self._hours = np.arange(-0.5, 25.0, 1.0)
        self._share = np.concatenate(([hourly[-1]], hourly, [hourly[0]]))

        n_cells = len(length)
        self._slip_roads(route_specs, n_cells)
        self.incident = np.ones(n_cells)
        self._closures: dict[int, tuple[int, float]] = {}
        self._next_closure = 0
        self.fleet = np.zeros(n_cells)
        """The fleet's own vehicles in each cell (kept by the vehicles)."""
        self.queue = np.zeros(len(self.routes))
        """Background vehicles waiting to enter each route (entry cell full)."""
        self.cum_out = np.zeros(n_cells)
        """Background vehicles that have left each cell since the start (cameras difference it)."""
        self.cum_speed = np.zeros(n_cells)
        """The same, each weighted by its speed (m/s): mean speed = Δcum_speed / Δcum_out."""
        self._next_weather = 0.0
        self._update_weather(0.0)
        q0 = np.repeat(self.demand(0.0), [r.n for r in self.routes.values()])
        self.n_bg = np.minimum(q0, 0.8 * self.cap) / self.vf * self.length
        self.speeds: list[float] = self.vf.tolist()
        """Speed (m/s) per cell as a list: the vehicles' hot path reads it."""

    def _cut(self, route: Route, profile: RoadProfile, first: int) -> RouteCells:
        """Equal cells of about ``cell_m``, but never so short that a car at the route's highest
        limit crosses one in a step (the CTM's stability condition)."""
        fastest = max([profile.base, *(z[2] for z in profile.zones)])
        shortest = max(self.spec.cell_m, fastest * self.dt * 1.001)
        n = max(1, int(route.length_m // shortest))
        return RouteCells(route.route_id, first, n, route.length_m / n)

    def _slip_roads(self, route_specs: dict[str, RouteSpec], n_cells: int) -> None:
        """Per cell: the share of its background outflow leaving by an off-slip at its end, and
        the vehicles a day joining the next cell from an on-slip (off before on, as on the road)."""
        self.leaving = np.zeros(n_cells)
        joining = np.zeros(n_cells)
        for rid, cells in self.routes.items():
            if cells.n < 2:
                continue  # a route of one cell has no room for a junction
            for j in route_specs[rid].junctions:
                i = min(cells.index(j.at_km * 1000), cells.first + cells.n - 2)
                self.leaving[i] = 1 - (1 - self.leaving[i]) * (1 - j.leaving)
                joining[i + 1] += j.joining
        self._ramps = np.flatnonzero(joining) if self.spec.background else np.array([], int)
        self.joining = joining[self._ramps]
        self.ramp_queue = np.zeros(len(self._ramps))
        """Vehicles waiting on each on-slip for room on the main carriageway."""

    # --- inputs -------------------------------------------------------------------------

    def _per_second(self, t: float) -> float:
        """The weekday profile at time ``t``: the share of a day's vehicles per second."""
        hour = (self.start_hour + t / 3600) % 24
        return float(np.interp(hour, self._hours, self._share)) / 3600

    def demand(self, t: float) -> np.ndarray:
        """Background vehicles per second wanting to enter each route at time ``t``."""
        return self.aadf * self._per_second(t)

    def _update_weather(self, t: float) -> None:
        precip = self.weather.rain_at(self.lats, self.lons, t)
        temp = self.weather.temperature_at(self.lats, t, precip)
        cap_f, speed_f = weather_factors(precip, temp)
        self.vf = self.vf0 * speed_f
        q = self.cap0 * cap_f
        # Jam density does not change with weather (Hranac et al., FHWA-HOP-07-073, 2006);
        # the wave speed follows from the triangle. Its floor keeps a crawl-speed zone sane.
        self.w = q / np.maximum(self.kj - q / self.vf, 0.2 * self.kj)
        self.q_weather = q
        self.cap = q * self.incident
        self._next_weather = t + self.spec.weather_every_s

    def close(self, route_id: str, distance_m: float, lanes_closed: int, breakdown: bool) -> int:
        """An incident blocks lanes (0: the shoulder) at a place; returns a handle to reopen."""
        i = self.routes[route_id].index(distance_m)
        factor = incident_capacity(int(self.lanes[i]), lanes_closed, breakdown)
        handle = self._next_closure
        self._next_closure += 1
        self._closures[handle] = (i, factor)
        self._recap(i)
        return handle

    def reopen(self, handle: int) -> None:
        i, _ = self._closures.pop(handle)
        self._recap(i)

    def _recap(self, i: int) -> None:
        self.incident[i] = min((f for j, f in self._closures.values() if j == i), default=1.0)
        self.cap[i] = self.q_weather[i] * self.incident[i]

    # --- the model ----------------------------------------------------------------------

    def step(self, t: float) -> None:
        """Advance every route by one step of ``dt`` from time ``t``."""
        if t >= self._next_weather:
            self._update_weather(t)
        dt, length, cap = self.dt, self.length, self.cap
        occupants = self.n_bg + self.fleet
        k = occupants / length
        send = np.minimum(self.vf * k, cap) * dt
        receive = np.clip(np.minimum(cap, self.w * (self.kj - k)), 0.0, None) * dt
        downstream = np.empty_like(receive)
        downstream[:-1] = receive[1:]
        downstream[self.last] = np.inf  # a route's end flows out freely
        share = np.divide(self.n_bg, occupants, out=np.zeros_like(k), where=occupants > 1e-9)
        # Only what stays on the carriageway must fit downstream (the fleet never turns off).
        through = 1.0 - self.leaving * share
        out = np.minimum(send, downstream / through)
        out_bg = out * share
        inflow = np.empty_like(out_bg)
        inflow[1:] = (out_bg * (1.0 - self.leaving))[:-1]
        per_second = self._per_second(t)
        wanting = self.queue + self.aadf * per_second * dt
        entering = np.minimum(wanting, receive[self.first])
        self.queue = wanting - entering
        inflow[self.first] = entering
        if self._ramps.size:  # on-slips take the room the main carriageway leaves
            r = self._ramps
            room = np.maximum(receive[r] - out[r - 1] * through[r - 1], 0.0)
            wanting = self.ramp_queue + self.joining * per_second * dt
            joined = np.minimum(wanting, room)
            self.ramp_queue = wanting - joined
            inflow[r] += joined
        self.n_bg = np.maximum(self.n_bg + inflow - out_bg, 0.0)
        # The cell's space-mean speed: what left it over what was in it, at most free flow.
        moving = occupants > 1e-6
        speed = np.divide(out * length, occupants * dt, out=self.vf.copy(), where=moving)
        np.minimum(speed, self.vf, out=speed)
        self.speeds[:] = speed.tolist()
        self.cum_out += out_bg
        self.cum_speed += out_bg * speed

    def run(self, env):
        """A SimPy process: one step every ``dt`` simulated seconds."""
        while True:
            self.step(env.now)
            yield env.timeout(self.dt)
