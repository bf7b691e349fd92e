"""What devices share: the weather field and the traffic on the roads.

Everything here is a pure function of (position, simulated time) or state changed by SimPy
processes in event order, so a run is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from devices.geo import M_PER_DEG_LAT
from devices.scenario import Front, Weather

if TYPE_CHECKING:
    from devices.traffic import Traffic

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

    def _front_offset_km(self, lat, lon, t: float):
        """(distance ahead of the front's centre line, position along the front) in km; floats
        or numpy arrays alike."""
        f = self.front
        assert f is not None
        x = (lon - self.lon0) * M_PER_DEG_LAT * self.k / 1000
        y = (lat - self.lat0) * M_PER_DEG_LAT / 1000
        along = x * self.ux + y * self.uy
        across = -x * self.uy + y * self.ux
        centre = f.start_km + f.speed_kmh * t / 3600
        return along - centre, across

    def rain(self, lat: float, lon: float, t: float) -> float:
        """Precipitation (mm/h) at one point."""
        return float(self.rain_at(np.array([lat]), np.array([lon]), t)[0])

    def rain_at(self, lats: np.ndarray, lons: np.ndarray, t: float) -> np.ndarray:
        """Precipitation (mm/h) at many points at once (the traffic model's cells)."""
        f = self.front
        if f is None:
            return np.zeros_like(lats, dtype=float)
        d, across = self._front_offset_km(lats, lons, t)
        cells = 0.75 + 0.25 * np.sin(across / 12.0 + t / 2400.0)
        mm = f.peak_mm_h * cells * np.exp(-((d / f.width_km) ** 2))
        return np.where((mm >= 0.1) & (np.abs(d) <= 3 * f.width_km), mm, 0.0)

    def temperature_at(self, lats: np.ndarray, t: float, precip: np.ndarray) -> np.ndarray:
        """Air temperature (°C): the daily cycle, cooler to the north and under rain."""
        spec = self.spec
        base = spec.base_temperature_c if spec else 9.0
        amp = spec.daily_amplitude_c if spec else 4.0
        hour = (self.start_hour + t / 3600) % 24
        return (
            base
            + amp * math.cos(2 * math.pi * (hour - 15) / 24)
            - 0.6 * (lats - self.lat0)
            - np.minimum(3.0, 1.2 * precip)
        )

    def sky(self, lat: float, lon: float, t: float) -> Sky:
        hour = (self.start_hour + t / 3600) % 24
        precip = self.rain(lat, lon, t)
        near, wind = False, 12.0
        if self.front:
            d, _ = self._front_offset_km(lat, lon, t)
            near = abs(d) < 2.5 * self.front.width_km
            wind += 28.0 * math.exp(-((d / (1.5 * self.front.width_km)) ** 2))
        temp = float(self.temperature_at(np.array([lat]), t, np.array([precip]))[0])
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


@dataclass
class World:
    weather: WeatherField
    traffic: Traffic
