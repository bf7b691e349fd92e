"""Building contract messages and Kafka topics for the Spark tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from contract import VEHICLE, encode, format_timestamp, message_id

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def vehicle(device: str, seq: int, at: datetime, **changes: object) -> dict:
    msg = {
        "id": message_id("test", 1, device, VEHICLE.name, seq),
        "device_id": device,
        "seq": seq,
        "timestamp": format_timestamp(at),
        "scenario": "test",
        "latitude": 52.0 + seq * 0.001,
        "longitude": -1.0,
        "speed_kmh": 60.0,
        "heading_deg": 0.0,
        "make": "Ford",
        "model": "Transit",
        "year": 2021,
        "fuel_type": "diesel",
        "vehicle_type": "van",
        "odometer_km": 1000.0 + seq,
        "fuel_level_pct": 80.0,
        "route_id": "r1",
        "trip_id": f"{device}-trip",
        "distance_km": seq * 0.5,
    }
    msg.update(changes)
    return msg


def series(device: str, seqs: Iterable[int]) -> list[dict]:
    return [vehicle(device, s, T0 + timedelta(seconds=s)) for s in seqs]


def create_topics(bootstrap: str, prefix: str, topics: Iterable[str], partitions: int = 2) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(prefix + t, partitions, 1) for t in topics])
    for f in futures.values():
        f.result(timeout=30)


def produce(bootstrap: str, topic: str, records: Iterable[tuple[str, bytes | dict]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    n = 0
    for key, value in records:
        payload = value if isinstance(value, bytes) else encode(value)
        producer.produce(topic, key=key.encode(), value=payload)
        n += 1
    assert producer.flush(30) == 0
    return n


def unique(name: str) -> str:
    return f"test-{name}-{uuid.uuid4().hex[:8]}"
