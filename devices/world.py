"""What devices share: the weather field, active incidents, traffic density, camera positions.

Everything here is a pure function of (position, simulated time) or state changed by SimPy
processes in event order, so a run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from devices.geo import M_PER_DEG_LAT
from devices.scenario import Front, Weather

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Sky:
    precipitation_mm: float
    temperature_c: float
    humidity_pct: float
    wind_speed_kmh: float
    near_front: bool


class WeatherField:
    """A rain band (Gaussian across, gently varying along) moving with the front, plus a daily
    temperature cycle. Stations sample it; vehicles feel it; both read the same numbers."""

    def __init__(self, spec: Weather | None, origin: tuple[float, float], start: datetime) -> None:
        self.spec = spec
        self.lat0, self.lon0 = origin
        self.k = math.cos(math.radians(self.lat0))
        self.start_hour = start.hour + start.minute / 60 + start.second / 3600
        front = spec.front if spec else None
        self.front: Front | None = front if front and front.peak_mm_h > 0 else None
        if self.front:
            b = math.radians(self.front.bearing_deg)
            self.ux, self.uy = math.sin(b), math.cos(b)

    def _front_offset_km(self, lat: float, lon: float, t: float) -> tuple[float, float]:
        """(distance ahead of the front's centre line, position along the front) in km."""
        f = self.front
        assert f is not None
        x = (lon - self.lon0) * M_PER_DEG_LAT * self.k / 1000
        y = (lat - self.lat0) * M_PER_DEG_LAT / 1000
        along = x * self.ux + y * self.uy
        across = -x * self.uy + y * self.ux
        centre = f.start_km + f.speed_kmh * t / 3600
        return along - centre, across

    def rain(self, lat: float, lon: float, t: float) -> float:
        f = self.front
        if f is None:
            return 0.0
        d, across = self._front_offset_km(lat, lon, t)
        if abs(d) > 3 * f.width_km:
            return 0.0
        cells = 0.75 + 0.25 * math.sin(across / 12.0 + t / 2400.0)
        mm = f.peak_mm_h * cells * math.exp(-((d / f.width_km) ** 2))
        return mm if mm >= 0.1 else 0.0

    def sky(self, lat: float, lon: float, t: float) -> Sky:
        spec = self.spec
        base = spec.base_temperature_c if spec else 9.0
        amp = spec.daily_amplitude_c if spec else 4.0
        hour = (self.start_hour + t / 3600) % 24
        precip = self.rain(lat, lon, t)
        near, wind = False, 12.0
        if self.front:
            d, _ = self._front_offset_km(lat, lon, t)
            near = abs(d) < 2.5 * self.front.width_km
            wind += 28.0 * math.exp(-((d / (1.5 * self.front.width_km)) ** 2))
        temp = (
            base
            + amp * math.cos(2 * math.pi * (hour - 15) / 24)
            - 0.6 * (lat - self.lat0)
            - min(3.0, 1.2 * precip)
        )
        humidity = 72 + 12 * math.cos(2 * math.pi * (hour - 5) / 24) + min(25.0, 12 * precip)
        return Sky(precip, temp, min(100.0, humidity), wind, near)


def condition(sky: Sky, temperature_c: float, humidity_pct: float) -> str:
    """Condition consistent with precipitation: never clear while it rains, never rain if dry."""
    p = sky.precipitation_mm
    if p > 0:
        if temperature_c <= 0.5:
            return "snow"
        return "drizzle" if p < 0.5 else "rain" if p < 4.0 else "heavy_rain"
    if humidity_pct >= 95 and sky.wind_speed_kmh < 15:
        return "fog"
    return "cloudy" if sky.near_front else "clear"


@dataclass(slots=True)
class Incident:
    incident_id: str
    type: str
    severity: int
    lat: float
    lon: float
    route_id: str
    radius_m: float
    status: str = "reported"
    k: float = field(init=False)

    def __post_init__(self) -> None:
        self.k = math.cos(math.radians(self.lat))

    def speed_factor(self) -> float:
        if self.type == "roadworks":
            return 0.7
        return max(0.1, 1.0 - 0.17 * self.severity)


@dataclass
class World:
    weather: WeatherField
    jam_per_km: float
    incidents: list[Incident] = field(default_factory=list)
    cells: dict[tuple[int, int], int] = field(default_factory=dict)
    """Vehicles per grid cell (1/50 degree latitude by 1/30 degree longitude, ~2.2 km square
    in England): the density that slows traffic where routes converge."""

    CELL_KM = 2.2

    @staticmethod
    def cell(lat: float, lon: float) -> tuple[int, int]:
        return (int(lat * 50.0), int(lon * 30.0))

    def enter(self, cell: tuple[int, int]) -> None:
        self.cells[cell] = self.cells.get(cell, 0) + 1

    def leave(self, cell: tuple[int, int]) -> None:
        n = self.cells[cell] - 1
        if n:
            self.cells[cell] = n
        else:
            del self.cells[cell]

    def density_factor(self, cell: tuple[int, int]) -> float:
        """Greenshields: speed falls linearly with density, to a crawl at jam density."""
        k = self.cells.get(cell, 0) / self.CELL_KM
        return max(0.08, 1.0 - k / self.jam_per_km)

    def incident_factor(self, lat: float, lon: float) -> float:
        factor = 1.0
        for inc in self.incidents:
            dy = (inc.lat - lat) * M_PER_DEG_LAT
            if abs(dy) > inc.radius_m:
                continue
            dx = (inc.lon - lon) * M_PER_DEG_LAT * inc.k
            if dx * dx + dy * dy <= inc.radius_m * inc.radius_m:
                factor = min(factor, inc.speed_factor())
        return factor
