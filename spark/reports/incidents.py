"""Incidents and the speed drop near them: vehicles within an incident's radius while it is
open, against the same stretch of road when it is not."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import svg
from spark.reports.geo import distance_km

NAME = "incidents"
TITLE = "Incidents"


def lifecycles(emergency: DataFrame) -> DataFrame:
    resolved = F.when(F.col("status") == "resolved", F.col("timestamp"))
    return emergency.groupBy("incident_id").agg(
        F.first("type").alias("type"),
        F.max("severity").alias("severity"),
        F.first("route_id").alias("route_id"),
        F.min_by("latitude", "timestamp").alias("inc_lat"),
        F.min_by("longitude", "timestamp").alias("inc_lon"),
        F.max("radius_km").alias("radius_km"),
        F.min("timestamp").alias("opened"),
        F.coalesce(F.min(resolved), F.max("timestamp")).alias("closed"),
    )


def build(vehicle: DataFrame, emergency: DataFrame) -> DataFrame:
    inc = lifecycles(emergency)
    near = (
        vehicle.select("timestamp", "speed_kmh", "latitude", "longitude")
        .crossJoin(F.broadcast(inc))
        .where(
            distance_km(F.col("latitude"), F.col("longitude"), F.col("inc_lat"), F.col("inc_lon"))
            <= F.col("radius_km")
        )
        .withColumn(
            "_open",
            (F.col("timestamp") >= F.col("opened")) & (F.col("timestamp") <= F.col("closed")),
        )
    )
    speeds = near.groupBy("incident_id").agg(
        F.avg(F.when(F.col("_open"), F.col("speed_kmh"))).alias("speed_during_kmh"),
        F.avg(F.when(~F.col("_open"), F.col("speed_kmh"))).alias("speed_otherwise_kmh"),
        F.count(F.when(F.col("_open"), 1)).alias("readings_during"),
    )
    return (
        inc.join(speeds, "incident_id", "left")
        .withColumn(
            "speed_drop_pct",
            100.0 * (1 - F.col("speed_during_kmh") / F.col("speed_otherwise_kmh")),
        )
        .withColumnRenamed("inc_lat", "latitude")
        .withColumnRenamed("inc_lon", "longitude")
        .orderBy("opened")
    )


def summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["incidents: none"]
    drops = [r for r in rows if r["speed_drop_pct"] is not None]
    worst = max(drops, key=lambda r: r["speed_drop_pct"], default=None)
    line = f"incidents: {len(rows)}"
    if worst:
        line += (
            f"; biggest speed drop {worst['speed_drop_pct']:.0f} % near {worst['incident_id']} "
            f"({worst['type']}, severity {worst['severity']})"
        )
    return [line]


def html(rows: list[dict]) -> str:
    bars = [(r["incident_id"], r["speed_drop_pct"] or 0.0) for r in rows[:40]]
    return svg.bar_chart(bars, "Speed drop near each incident while open", "incident", "%")
