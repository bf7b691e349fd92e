"""Roadside devices: traffic cameras that count the vehicles passing them (the traffic model's
background flow plus the fleet's own vehicles), and weather stations that sample the shared
weather field."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from contract.streams import TRAFFIC, WEATHER
from devices import snapshots
from devices.emit import Device
from devices.geo import Route
from devices.traffic import Traffic
from devices.world import World, condition


def placements(route: Route, every_km: float) -> list[float]:
    """Distances (m) every ``every_km`` along the route, or its middle if it is shorter."""
    step = every_km * 1000
    spots = [k * step for k in range(1, int(route.length_m // step) + 1)]
    spots = [s for s in spots if s < route.length_m - 1000]
    return spots or [route.length_m / 2]


def congestion(
    count: int, avg_kmh: float | None, free_kmh: float, capacity_h: float, interval_s: float
) -> str:
    """From speed (against the free-flow speed) and flow (against the capacity): below 20 % of
    free flow standstill, 50 % heavy, 80 % moderate; flowing freely but at half the capacity or
    more, light; else free."""
    if not count or avg_kmh is None:
        return "free"
    ratio = avg_kmh / free_kmh
    if ratio < 0.2:
        return "standstill"
    if ratio < 0.5:
        return "heavy"
    if ratio < 0.8:
        return "moderate"
    flow_h = count * 3600 / interval_s
    return "light" if flow_h >= 0.5 * capacity_h else "free"


@dataclass(eq=False)
class Camera:
    dev: Device
    route: Route
    distance_m: float
    traffic: Traffic
    interval_s: float
    snapshot_mode: str
    uploader: snapshots.Uploader | None
    count: int = 0
    """Fleet vehicles seen this interval (the background comes from the traffic model)."""
    speed_sum: float = field(default=0.0)

    def observe(self, speed_kmh: float) -> None:
        self.count += 1
        self.speed_sum += speed_kmh

    def _background(
        self, cell: int, seen: tuple[float, float]
    ) -> tuple[int, float, tuple[float, float]]:
        """(whole background vehicles out of the camera's cell since ``seen``, their summed
        speed in km/h, the new mark): counts are whole crossings of the cumulative flow."""
        traffic = self.traffic
        out, weighted = float(traffic.cum_out[cell]), float(traffic.cum_speed[cell])
        vehicles = int(out) - int(seen[0])
        flowed = out - seen[0]
        mean_ms = (weighted - seen[1]) / flowed if flowed > 1e-9 else traffic.speeds[cell]
        return vehicles, vehicles * mean_ms * 3.6, (out, weighted)

    def run(self):
        dev, hub, traffic = self.dev, self.dev.hub, self.traffic
        lat, lon, _ = self.route.locate(self.distance_m)
        cell = traffic.routes[self.route.route_id].index(self.distance_m)
        free_kmh = float(traffic.vf0[cell]) * 3.6
        capacity_h = float(traffic.cap0[cell]) * 3600
        seen = (float(traffic.cum_out[cell]), float(traffic.cum_speed[cell]))
        while True:
            yield from dev.sleep(self.interval_s)
            background, bg_speed, seen = self._background(cell, seen)
            count, total = self.count + background, self.speed_sum + bg_speed
            self.count, self.speed_sum = 0, 0.0
            if not dev.up:
                continue
            avg = round(total / count, 1) if count else None
            level = congestion(count, avg, free_kmh, capacity_h, self.interval_s)
            url = None
            if self.snapshot_mode != "none":
                image = snapshots.png(count, level, dev.rng)
                if self.snapshot_mode == "inline" or self.uploader is None:
                    url = snapshots.data_uri(image)
                else:
                    stamp = hub.clock.format(hub.env.now).replace(":", "").replace("-", "")
                    key = f"snapshots/{hub.scenario}/{dev.id}/{stamp}.png"
                    url = self.uploader.put(key, image)
            dev.emit(
                TRAFFIC,
                {
                    "latitude": round(lat, 6),
                    "longitude": round(lon, 6),
                    "camera_id": dev.id,
                    "route_id": self.route.route_id,
                    "distance_km": round(self.distance_m / 1000, 3),
                    "interval_s": float(self.interval_s),
                    "vehicle_count": count,
                    "avg_speed_kmh": avg,
                    "congestion_level": level,
                    "snapshot_url": url,
                },
            )


def _rush(hour: float) -> float:
    return math.exp(-(((hour - 8.0) / 1.5) ** 2)) + math.exp(-(((hour - 17.5) / 1.5) ** 2))


def weather_station(dev: Device, lat: float, lon: float, urban: bool, world: World, every: float):
    """Samples the weather field with a small sensor offset and noise; values agree with the
    condition: precipitation is reported exactly when the condition is wet."""
    rng, hub = dev.rng, dev.hub
    offset = rng.gauss(0, 0.3)
    start_hour = world.weather.start_hour
    while True:
        now = hub.env.now
        if dev.up:
            sky = world.weather.sky(lat, lon, now)
            temp = round(sky.temperature_c + offset + rng.gauss(0, 0.15), 1)
            humidity = round(min(100.0, max(5.0, sky.humidity_pct + rng.gauss(0, 1.0))), 1)
            hour = (start_hour + now / 3600) % 24
            aqi = 2 + 2.5 * _rush(hour) + (2 if urban else 0) - sky.wind_speed_kmh / 20
            dev.emit(
                WEATHER,
                {
                    "latitude": round(lat, 6),
                    "longitude": round(lon, 6),
                    "temperature_c": temp,
                    "weather_condition": condition(sky, temp, humidity),
                    "precipitation_mm": max(0.1, round(sky.precipitation_mm, 1))
                    if sky.precipitation_mm > 0
                    else 0.0,
                    "humidity_pct": humidity,
                    "wind_speed_kmh": round(max(0.0, sky.wind_speed_kmh + rng.gauss(0, 1.5)), 1),
                    "air_quality_index": int(min(10, max(1, round(aqi + rng.gauss(0, 0.4))))),
                },
            )
        yield from dev.sleep(every)
