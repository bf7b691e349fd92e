"""Weather along the route and its effect on speed: each vehicle reading takes the weather
of its nearest station in the same hour; speed is then averaged per condition."""

from __future__ import annotations

from markupsafe import Markup
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import charts
from spark.reports.geo import distance_km

NAME = "weather"
TITLE = "Weather and speed"


def station_hours(weather: DataFrame) -> DataFrame:
    return (
        weather.withColumn("hour", F.date_trunc("hour", "timestamp"))
        .groupBy(F.col("device_id").alias("station_id"), "hour")
        .agg(
            F.max_by("weather_condition", "timestamp").alias("weather_condition"),
            F.avg("precipitation_mm").alias("precipitation_mm"),
            F.avg("temperature_c").alias("temperature_c"),
            F.first("latitude").alias("st_lat"),
            F.first("longitude").alias("st_lon"),
        )
    )


def build(vehicle: DataFrame, weather: DataFrame) -> DataFrame:
    stations = station_hours(weather)
    readings = vehicle.select(
        "device_id",
        "seq",
        "speed_kmh",
        "latitude",
        "longitude",
        F.date_trunc("hour", "timestamp").alias("hour"),
    )
    joined = readings.join(F.broadcast(stations), "hour").withColumn(
        "_d", distance_km(F.col("latitude"), F.col("longitude"), F.col("st_lat"), F.col("st_lon"))
    )
    nearest = joined.groupBy("device_id", "seq").agg(
        F.min_by(F.struct("weather_condition", "speed_kmh", "station_id"), "_d").alias("n")
    )
    return (
        nearest.groupBy(F.col("n.weather_condition").alias("weather_condition"))
        .agg(
            F.count("*").alias("readings"),
            F.avg("n.speed_kmh").alias("avg_speed_kmh"),
            F.countDistinct("n.station_id").alias("stations"),
        )
        .orderBy(F.desc("readings"))
    )


def summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["weather: no vehicle readings near a weather station"]
    parts = ", ".join(f"{r['weather_condition']} {r['avg_speed_kmh']:.0f} km/h" for r in rows)
    return [f"weather: mean speed by condition: {parts}"]


def html(rows: list[dict]) -> Markup:
    items = [(r["weather_condition"], r["avg_speed_kmh"]) for r in rows]
    hover = [
        f"{r['weather_condition']}: {r['readings']:,} readings near {r['stations']} stations"
        for r in rows
    ]
    return charts.bars(items, "Mean vehicle speed by weather", "condition", "km/h", hover)
