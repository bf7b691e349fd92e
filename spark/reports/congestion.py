"""Camera congestion over time: vehicles counted and mean speed per camera per 15 minutes."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import svg

NAME = "congestion"
TITLE = "Camera congestion"
LEVELS = {"free": 0, "light": 1, "moderate": 2, "heavy": 3, "standstill": 4}


def build(traffic: DataFrame) -> DataFrame:
    level = F.create_map(*[F.lit(x) for kv in LEVELS.items() for x in kv])
    return (
        traffic.groupBy("camera_id", F.window("timestamp", "15 minutes").alias("w"))
        .agg(
            F.sum("vehicle_count").alias("vehicles"),
            F.avg("avg_speed_kmh").alias("avg_speed_kmh"),
            F.max(level[F.col("congestion_level")]).alias("worst_level"),
            F.first("route_id").alias("route_id"),
        )
        .select(
            "camera_id",
            "route_id",
            F.col("w.start").alias("window_start"),
            "vehicles",
            "avg_speed_kmh",
            "worst_level",
        )
        .orderBy("camera_id", "window_start")
    )


def summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["congestion: no camera data"]
    names = {v: k for k, v in LEVELS.items()}
    worst = max(rows, key=lambda r: (r["worst_level"] or 0, r["vehicles"]))
    cams = len({r["camera_id"] for r in rows})
    return [
        f"congestion: {cams} cameras, {sum(r['vehicles'] for r in rows):,} vehicles counted; "
        f"worst {names.get(worst['worst_level'], '?')} at {worst['camera_id']} "
        f"from {worst['window_start']:%H:%M}"
    ]


def html(rows: list[dict]) -> str:
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        series.setdefault(r["camera_id"], []).append(
            (r["window_start"].timestamp() / 3600.0, float(r["vehicles"]))
        )
    top = dict(sorted(series.items(), key=lambda kv: -sum(v for _, v in kv[1]))[:8])
    return svg.line_chart(
        top, "Vehicles per 15 minutes (busiest cameras)", "hour (epoch h)", "vehicles"
    )
