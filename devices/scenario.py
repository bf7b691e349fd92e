"""The scenario: typed, validated once when the YAML is loaded (see ``devices.loader``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.streams import FUEL_TYPES, INCIDENT_TYPES, VEHICLE_TYPES

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Qos = Literal[0, 1, 2]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")]
Lanes = Annotated[int, Field(ge=1, le=8)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Clock(Model):
    mode: Literal["realtime", "fast"] = "fast"
    speed: Positive = 1.0
    """Simulated seconds per wall second in real-time mode (60 = one hour a minute)."""


class Mqtt(Model):
    qos: dict[Literal["vehicle", "gps", "traffic", "weather", "emergency"], Qos] = {}
    """QoS per stream; streams not named use ``default_qos``."""
    default_qos: Qos = 1
    multiplex: Annotated[int, Field(ge=0)] = 0
    """0: every device its own connection; N: devices share N gateway connections."""
    buffer_max: Annotated[int, Field(ge=1)] = 10_000
    """Messages a device buffers while offline; beyond that the oldest are dropped (counted)."""
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 60


class SpeedZone(Model):
    """A stretch with its own limit and/or number of lanes (roadworks, junctions, lane drops)."""

    from_km: NonNegative
    to_km: NonNegative
    limit_kmh: Positive | None = None
    lanes: Lanes | None = None

    @model_validator(mode="after")
    def _something(self) -> SpeedZone:
        if self.limit_kmh is None and self.lanes is None:
            raise ValueError("give limit_kmh or lanes (or both) for the stretch")
        return self


class Junction(Model):
    """Slip roads at a place along the route: background traffic leaving and joining."""

    at_km: NonNegative
    leaving: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Share of the background traffic arriving here that takes the off-slip."""
    joining: NonNegative = 0.0
    """Vehicles a day joining from the on-slip (over the same weekday profile)."""


class RouteSpec(Model):
    id: Slug
    file: str
    """GeoJSON path, relative to the scenario file."""
    limit_kmh: Positive = 112.0
    """Motorway limit (70 mph)."""
    urban_limit_kmh: Positive = 64.0
    urban_start_km: NonNegative = 3.0
    """Urban stretch at the start of the route (junctions, slip roads, city streets)."""
    urban_end_km: NonNegative = 3.0
    zones: list[SpeedZone] = []
    """Extra limits (roadworks, junction areas; the lowest applicable limit wins) and stretches
    with another number of lanes (the last zone naming lanes wins)."""
    lanes: Lanes = 3
    """Lanes in the direction of travel (a three-lane motorway carriageway by default)."""
    aadf: NonNegative = 60_000.0
    """Background demand: vehicles a day entering at the route's start, this direction only
    (like the DfT's annual average daily flow, which counts both directions: halve it)."""
    junctions: list[Junction] = []
    """Optional slip roads; without them a route carries its entry demand all the way."""


class VehicleModel(Model):
    make: str
    model: str
    vehicle_type: Literal[VEHICLE_TYPES] = "car"  # type: ignore[valid-type]
    fuel_type: Literal[FUEL_TYPES] = "petrol"  # type: ignore[valid-type]
    years: tuple[int, int] = (2012, 2025)
    weight: Positive = 1.0

    @model_validator(mode="after")
    def _years(self) -> VehicleModel:
        if not 1950 <= self.years[0] <= self.years[1] <= 2100:
            raise ValueError("years must be [first, last] with 1950 <= first <= last <= 2100")
        return self


DEFAULT_MIX = (
    VehicleModel(make="Ford", model="Fiesta", fuel_type="petrol", weight=3),
    VehicleModel(make="Vauxhall", model="Corsa", fuel_type="petrol", weight=2),
    VehicleModel(make="Volkswagen", model="Golf", fuel_type="diesel", weight=2),
    VehicleModel(make="Toyota", model="Corolla", fuel_type="hybrid", weight=2),
    VehicleModel(make="Tesla", model="Model 3", fuel_type="electric", years=(2019, 2025)),
    VehicleModel(make="Ford", model="Transit", vehicle_type="van", fuel_type="diesel", weight=2),
    VehicleModel(make="DAF", model="XF", vehicle_type="truck", fuel_type="diesel"),
)


class StreamIntervals(Model):
    vehicle: Positive | None = 5.0
    gps: Positive | None = 1.0
    """Seconds between messages; null turns the stream off."""


class Departures(Model):
    first_s: NonNegative = 0.0
    every_s: NonNegative = 60.0
    jitter_s: NonNegative = 0.0


class VehicleFleet(Model):
    route: Slug
    count: Annotated[int, Field(ge=1, le=200_000)]
    depart: Departures = Departures()
    intervals_s: StreamIntervals = StreamIntervals()
    mix: list[VehicleModel] = list(DEFAULT_MIX)
    gps_dropout_prob: Probability = 0.002
    """Chance per fix that the receiver loses the fix (then 5-40 s without messages)."""


class Point(Model):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class CameraSet(Model):
    route: Slug
    every_km: Positive | None = None
    at: list[Point] = []
    interval_s: Positive = 60.0
    snapshots: Literal["s3", "inline", "none"] = "s3"

    @model_validator(mode="after")
    def _placement(self) -> CameraSet:
        if self.every_km is None and not self.at:
            raise ValueError("give every_km or at (a list of {lat, lon}) to place cameras")
        return self


class Front(Model):
    speed_kmh: NonNegative = 35.0
    bearing_deg: Annotated[float, Field(ge=0, lt=360)] = 45.0
    """Direction the front travels to (45 = towards the north-east)."""
    start_km: float = -60.0
    """Where the front's centre starts, along its bearing, relative to the first route's start."""
    width_km: Positive = 25.0
    peak_mm_h: NonNegative = 6.0


class Weather(Model):
    every_km: Positive = 30.0
    interval_s: Positive = 300.0
    base_temperature_c: Annotated[float, Field(ge=-40, le=45)] = 9.0
    daily_amplitude_c: NonNegative = 4.0
    front: Front | None = Front()


class PlannedIncident(Model):
    """An incident at a chosen place and time (tests, demos), besides the random ones."""

    route: Slug
    at_km: NonNegative
    type: Literal[INCIDENT_TYPES] = "accident"  # type: ignore[valid-type]
    start_s: NonNegative
    """Simulated seconds after the start when it happens (and is reported)."""
    duration_s: Positive = 2700.0
    """Until it is resolved and the lanes reopen."""
    responders_after_s: NonNegative = 600.0
    severity: Annotated[int, Field(ge=1, le=5)] = 4
    lanes_closed: Annotated[int, Field(ge=0, le=8)] | None = None
    """Lanes it blocks (0: the hard shoulder only); default from the type and severity."""


class Incidents(Model):
    enabled: bool = True
    rate_per_hour: NonNegative = 2.0
    types: list[Literal[INCIDENT_TYPES]] = list(INCIDENT_TYPES)  # type: ignore[valid-type]
    radius_km: Positive = 2.0
    planned: list[PlannedIncident] = []


DFT_WEEKDAY = (
    0.9, 0.6, 0.5, 0.5, 0.8, 1.8, 4.2, 7.0, 7.4, 6.0, 5.7, 5.7,
    5.8, 5.9, 6.2, 6.9, 7.3, 7.6, 6.0, 4.2, 3.1, 2.5, 2.0, 1.4,
)  # fmt: skip
"""Per cent of a weekday's traffic in each hour from 00:00: two peaks (07-09, 16-18) of about
7.5 % of the day, under 1 % an hour at night. The shape of the DfT's weekday distribution of
motor traffic by hour (table TRA0307, Great Britain), rounded; see devices/README.md."""


class Traffic(Model):
    """Background traffic: Daganzo's cell transmission model on every route."""

    background: bool = True
    """false: no background demand; the model still carries the fleet's own vehicles."""
    step_s: Annotated[float, Field(ge=1, le=30)] = 10.0
    """The model's fixed time step, inside the SimPy clock."""
    cell_m: Annotated[float, Field(ge=100, le=2000)] = 400.0
    """Target cell length; raised where needed so no car crosses a cell in one step."""
    capacity_per_lane_h: Positive = 2_000.0
    jam_density_per_lane_km: Positive = 140.0
    profile: Annotated[list[NonNegative], Field(min_length=24, max_length=24)] = list(DFT_WEEKDAY)
    """Share of the day's demand in each hour from 00:00 of the simulated clock, which is UTC
    (UK clock time in winter, an hour behind it in summer); any scale, it is normalised."""
    weather_every_s: Positive = 60.0

    @model_validator(mode="after")
    def _some_traffic(self) -> Traffic:
        if sum(self.profile) <= 0:
            raise ValueError("profile needs at least one hour with traffic")
        return self


class Faults(Model):
    duplicate_prob: Probability = 0.0
    drop_prob: Probability = 0.0
    """Network loses the message after the device published it: a real seq gap."""
    late_prob: Probability = 0.0
    late_delay_s: tuple[NonNegative, NonNegative] = (5.0, 60.0)
    clock_skew_s: NonNegative = 0.0
    """Each device's clock is off by a constant drawn from [-clock_skew_s, +clock_skew_s]."""
    reboot_per_hour: NonNegative = 0.0
    reboot_downtime_s: tuple[NonNegative, NonNegative] = (10.0, 60.0)


class Bounds(Model):
    """Where the scenario's roads lie; catches routes given in lat/lon order."""

    min_lon: Annotated[float, Field(ge=-180, le=180)] = -11.0
    min_lat: Annotated[float, Field(ge=-90, le=90)] = 49.0
    max_lon: Annotated[float, Field(ge=-180, le=180)] = 3.0
    max_lat: Annotated[float, Field(ge=-90, le=90)] = 61.0


class Scenario(Model):
    name: Slug
    description: str = ""
    seed: int = 1
    start: datetime = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    duration_s: Positive | None = None
    """Simulated seconds to run; null runs until every trip has ended."""
    id_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")] | None = None
    """Prefix of every device id (default: the scenario name)."""
    clock: Clock = Clock()
    mqtt: Mqtt = Mqtt()
    bounds: Bounds = Bounds()
    routes: Annotated[list[RouteSpec], Field(min_length=1)]
    vehicles: list[VehicleFleet] = []
    cameras: list[CameraSet] = []
    weather: Weather | None = Weather()
    incidents: Incidents = Incidents()
    faults: Faults = Faults()
    traffic: Traffic = Traffic()

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        ids = [r.id for r in self.routes]
        if len(set(ids)) != len(ids):
            raise ValueError("route ids must be unique")
        if self.duration_s is None and not self.vehicles:
            raise ValueError("duration_s is required when there are no vehicles")
        return self

    @property
    def prefix(self) -> str:
        return self.id_prefix or self.name
