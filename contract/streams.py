"""The message contract: every stream CityFleet carries, defined once.

Devices build payloads from these definitions, the bridge validates against them, and
Spark derives its schemas from them. Nothing else in the project lists a stream's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    UUID = "uuid"
    TIMESTAMP = "timestamp"  # ISO 8601 UTC with milliseconds, e.g. 2026-11-23T08:00:00.000Z


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    doc: str
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    """The stream's name, the second level of its MQTT topic: ``city/<name>/<device_id>``."""
    kafka_topic: str
    doc: str
    fields: tuple[Field, ...]
    sequenced: bool = True
    """Sequenced streams carry ``seq`` and are deduplicated downstream on (device_id, seq)."""

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"stream {self.name!r} has no field {name!r}")


def _f(name: str, type_: FieldType, doc: str, **kw: object) -> Field:
    return Field(name, type_, doc, **kw)  # type: ignore[arg-type]


S, INT, F, U, T = (
    FieldType.STRING,
    FieldType.INT,
    FieldType.FLOAT,
    FieldType.UUID,
    FieldType.TIMESTAMP,
)

ENVELOPE: tuple[Field, ...] = (
    _f("id", U, "Message id, a UUID; deterministic for a given scenario, seed, device and seq."),
    _f("device_id", S, "The publishing device; also its MQTT client id and the Kafka key."),
    _f(
        "seq",
        INT,
        "Per device and stream: 1, 2, 3, ... with no gap; survives device reboots.",
        minimum=1,
    ),
    _f("timestamp", T, "Event time, ISO 8601 UTC with milliseconds."),
    _f("scenario", S, "Name of the scenario that produced the message."),
)

POSITION: tuple[Field, ...] = (
    _f("latitude", F, "WGS 84 latitude in degrees.", minimum=-90, maximum=90),
    _f("longitude", F, "WGS 84 longitude in degrees.", minimum=-180, maximum=180),
)

FUEL_TYPES = ("petrol", "diesel", "hybrid", "electric")
VEHICLE_TYPES = ("car", "van", "truck", "bus", "motorcycle", "emergency")
CONGESTION_LEVELS = ("free", "light", "moderate", "heavy", "standstill")
WEATHER_CONDITIONS = ("clear", "cloudy", "fog", "drizzle", "rain", "heavy_rain", "snow")
INCIDENT_TYPES = ("accident", "breakdown", "roadworks", "medical", "fire")
INCIDENT_STATUSES = ("reported", "active", "resolved")
DEVICE_STATUSES = ("online", "offline")

VEHICLE = Stream(
    "vehicle",
    "vehicle_data",
    "Vehicle telemetry from the on-board unit.",
    ENVELOPE
    + POSITION
    + (
        _f("speed_kmh", F, "Speed over ground.", minimum=0, maximum=300),
        _f(
            "heading_deg",
            F,
            "Heading from the road geometry, 0 = north, clockwise.",
            minimum=0,
            maximum=360,
        ),
        _f("make", S, "Manufacturer."),
        _f("model", S, "Model."),
        _f("year", INT, "Model year.", minimum=1950, maximum=2100),
        _f("fuel_type", S, "Fuel type.", choices=FUEL_TYPES),
        _f("vehicle_type", S, "Kind of vehicle.", choices=VEHICLE_TYPES),
        _f("odometer_km", F, "Total distance driven.", minimum=0),
        _f("fuel_level_pct", F, "Fuel (or charge) left.", minimum=0, maximum=100),
        _f("route_id", S, "Route the vehicle drives."),
        _f("trip_id", S, "This trip; one vehicle may drive several."),
        _f("distance_km", F, "Distance along the route since the trip started.", minimum=0),
    ),
)

GPS = Stream(
    "gps",
    "gps_data",
    "GPS fixes with metre-scale noise, HDOP and satellites; no message during a fix loss.",
    ENVELOPE
    + POSITION
    + (
        _f("speed_kmh", F, "Speed reported by the receiver.", minimum=0, maximum=300),
        _f("heading_deg", F, "Course over ground.", minimum=0, maximum=360),
        _f("vehicle_type", S, "Kind of vehicle carrying the receiver.", choices=VEHICLE_TYPES),
        _f("hdop", F, "Horizontal dilution of precision.", minimum=0),
        _f("satellites", INT, "Satellites in the fix.", minimum=0, maximum=64),
    ),
)

TRAFFIC = Stream(
    "traffic",
    "traffic_data",
    "Roadside cameras: what passed in the last interval.",
    ENVELOPE
    + POSITION
    + (
        _f("camera_id", S, "Camera name (same as device_id for a camera)."),
        _f("route_id", S, "Route the camera watches."),
        _f(
            "distance_km",
            F,
            "Where the camera stands along its route (chainage), for time-by-distance views.",
            minimum=0,
        ),
        _f("interval_s", F, "Length of the counting interval.", minimum=0),
        _f("vehicle_count", INT, "Vehicles that passed in the interval.", minimum=0),
        _f(
            "avg_speed_kmh",
            F,
            "Mean speed of those vehicles; null when none passed.",
            nullable=True,
            minimum=0,
        ),
        _f(
            "congestion_level",
            S,
            "Congestion judged from speed and flow.",
            choices=CONGESTION_LEVELS,
        ),
        _f(
            "snapshot_url",
            S,
            "s3:// URI of a snapshot image, or a data: URI when inlined.",
            nullable=True,
        ),
    ),
)

WEATHER = Stream(
    "weather",
    "weather_data",
    "Weather stations along the routes.",
    ENVELOPE
    + POSITION
    + (
        _f("temperature_c", F, "Air temperature.", minimum=-60, maximum=60),
        _f(
            "weather_condition",
            S,
            "Condition; agrees with precipitation.",
            choices=WEATHER_CONDITIONS,
        ),
        _f("precipitation_mm", F, "Precipitation rate, mm per hour.", minimum=0),
        _f("humidity_pct", F, "Relative humidity.", minimum=0, maximum=100),
        _f("wind_speed_kmh", F, "Wind speed.", minimum=0),
        _f(
            "air_quality_index",
            INT,
            "Air quality index (UK DAQI-like scale 1-10).",
            minimum=1,
            maximum=10,
        ),
    ),
)

EMERGENCY = Stream(
    "emergency",
    "emergency_data",
    "Incidents: each lifecycle change is one message.",
    ENVELOPE
    + POSITION
    + (
        _f("incident_id", S, "Incident id; stable across its lifecycle."),
        _f("type", S, "Kind of incident.", choices=INCIDENT_TYPES),
        _f("status", S, "Lifecycle state.", choices=INCIDENT_STATUSES),
        _f("severity", INT, "1 (minor) to 5 (critical).", minimum=1, maximum=5),
        _f("description", S, "Human-readable description."),
        _f("route_id", S, "Route the incident is on."),
        _f("radius_km", F, "Distance within which traffic is affected.", minimum=0),
    ),
)

STATUS = Stream(
    "status",
    "device_status",
    "Retained device presence; the last will publishes offline.",
    (
        _f("device_id", S, "The device."),
        _f("status", S, "Presence.", choices=DEVICE_STATUSES),
        _f("timestamp", T, "When the device announced it (for the will: when it connected)."),
        _f("scenario", S, "Scenario the device belongs to."),
    ),
    sequenced=False,
)

DATA_STREAMS: tuple[Stream, ...] = (VEHICLE, GPS, TRAFFIC, WEATHER, EMERGENCY)
"""The five sequenced data streams, in a stable order."""

ALL_STREAMS: tuple[Stream, ...] = (*DATA_STREAMS, STATUS)
STREAMS: dict[str, Stream] = {s.name: s for s in ALL_STREAMS}

DEAD_LETTER_TOPIC = "dead_letter"
KAFKA_TOPICS: tuple[str, ...] = (*(s.kafka_topic for s in ALL_STREAMS), DEAD_LETTER_TOPIC)
