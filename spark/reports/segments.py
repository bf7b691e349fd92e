"""Road segments: speed per kilometre of route and per hour, where the traffic is slow."""

from __future__ import annotations

from markupsafe import Markup
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import charts

NAME = "segments"
TITLE = "Road segments"


def build(vehicle: DataFrame) -> DataFrame:
    return (
        vehicle.withColumn("km", F.floor("distance_km").cast("int"))
        .withColumn("hour", F.date_trunc("hour", "timestamp"))
        .groupBy("route_id", "km", "hour")
        .agg(
            F.avg("speed_kmh").alias("avg_speed_kmh"),
            F.expr("percentile_approx(speed_kmh, 0.1)").alias("p10_speed_kmh"),
            F.count("*").alias("readings"),
            F.countDistinct("device_id").alias("vehicles"),
        )
        .orderBy("route_id", "km", "hour")
    )


def _per_km(rows: list[dict]) -> dict[str, dict[int, tuple[float, int]]]:
    """route → km → (reading-weighted mean speed, readings) over all hours."""
    acc: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        cell = acc.setdefault(r["route_id"], {}).setdefault(r["km"], [0.0, 0])
        cell[0] += r["avg_speed_kmh"] * r["readings"]
        cell[1] += r["readings"]
    return {
        route: {km: (s / n, int(n)) for km, (s, n) in kms.items() if n}
        for route, kms in acc.items()
    }


def summary(rows: list[dict]) -> list[str]:
    per_km = _per_km(rows)
    if not per_km:
        return ["segments: no vehicle data"]
    lines = []
    for route, kms in per_km.items():
        slow = sorted(kms.items(), key=lambda kv: kv[1][0])[:3]
        where = ", ".join(f"km {km} ({speed:.0f} km/h)" for km, (speed, _) in slow)
        lines.append(f"segments: {route}: {len(kms)} km covered; slowest {where}")
    return lines


def html(rows: list[dict]) -> Markup:
    per_km = _per_km(rows)
    series = {
        route: [(float(km), speed) for km, (speed, _) in kms.items()]
        for route, kms in per_km.items()
    }
    return charts.lines(series, "Mean speed along the route", "km from start", "km/h")
