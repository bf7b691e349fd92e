"""Journeys: one row per vehicle trip: distance, duration, speeds, fuel used, stops."""

from __future__ import annotations

import plotly.graph_objects as go
from markupsafe import Markup
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark.reports import charts, page

NAME = "journeys"
TITLE = "Journeys"
STOP_KMH = 2.0
"""A vehicle below this speed counts as stopped; a stop is a run of stopped readings."""


def build(vehicle: DataFrame) -> DataFrame:
    by_trip = Window.partitionBy("device_id", "trip_id").orderBy("timestamp", "seq")
    flagged = vehicle.withColumn("_stopped", F.col("speed_kmh") < STOP_KMH).withColumn(
        "_prev_stopped", F.lag("_stopped").over(by_trip)
    )
    starts_stop = F.col("_stopped") & ~F.coalesce(F.col("_prev_stopped"), F.lit(False))
    return (
        flagged.groupBy("device_id", "trip_id")
        .agg(
            F.first("route_id").alias("route_id"),
            F.first("vehicle_type").alias("vehicle_type"),
            F.min("timestamp").alias("start"),
            F.max("timestamp").alias("end"),
            (F.max("distance_km") - F.min("distance_km")).alias("distance_km"),
            F.avg("speed_kmh").alias("avg_speed_kmh"),
            F.max("speed_kmh").alias("max_speed_kmh"),
            (
                F.min_by("fuel_level_pct", F.struct("timestamp", "seq"))
                - F.max_by("fuel_level_pct", F.struct("timestamp", "seq"))
            ).alias("fuel_used_pct"),
            F.sum(starts_stop.cast("int")).alias("stops"),
            F.count("*").alias("readings"),
        )
        .withColumn("duration_min", (F.unix_timestamp("end") - F.unix_timestamp("start")) / 60.0)
        .orderBy("device_id", "start")
    )


def summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["journeys: no vehicle data"]
    km = sum(r["distance_km"] or 0 for r in rows)
    longest = max(rows, key=lambda r: r["distance_km"] or 0)
    return [
        f"journeys: {len(rows)} trips, {km:,.1f} km in total; longest {longest['trip_id']} "
        f"({longest['device_id']}): {longest['distance_km']:.1f} km in "
        f"{longest['duration_min']:.0f} min, avg {longest['avg_speed_kmh']:.0f} km/h"
    ]


def timeline(rows: list[dict]) -> Markup:
    """Each trip as a bar from its start to its end on a time-of-day axis, coloured by speed."""
    if not rows:
        return charts.empty("Trips over the day")
    devices = sorted({r["device_id"] for r in rows})
    fig = go.Figure(
        go.Bar(
            base=[r["start"] for r in rows],
            x=[(r["end"] - r["start"]).total_seconds() * 1000 for r in rows],
            y=[charts.text(r["device_id"]) for r in rows],
            orientation="h",
            marker={
                "color": [r["avg_speed_kmh"] for r in rows],
                **charts.speed_colours("avg km/h"),
            },
            customdata=[
                [
                    charts.text(r["device_id"]),
                    charts.text(r["trip_id"]),
                    charts.text(r["route_id"]),
                    f"{r['distance_km']:.1f}",
                    f"{r['duration_min']:.0f}",
                    f"{r['start']:%H:%M}",
                    f"{r['end']:%H:%M}",
                ]
                for r in rows
            ],
            hovertemplate="%{customdata[0]}, trip %{customdata[1]} on %{customdata[2]}<br>"
            "%{customdata[5]}-%{customdata[6]} UTC: %{customdata[3]} km in %{customdata[4]} min, "
            "avg %{marker.color:.0f} km/h<extra></extra>",
        )
    )
    fig.update_layout(
        charts.layout(
            "Trips over the day",
            height=max(240, 100 + 22 * len(devices)),
            xaxis=charts.TIME_AXIS,
            yaxis={"type": "category", "autorange": "reversed", "title": {"text": "vehicle"}},
        )
    )
    return charts.render(fig)


def html(rows: list[dict]) -> Markup:
    header = ("device", "trip", "route", "km", "min", "avg km/h", "max km/h", "fuel %", "stops")
    cells = [
        (
            r["device_id"],
            r["trip_id"],
            r["route_id"],
            f"{r['distance_km']:.1f}",
            f"{r['duration_min']:.0f}",
            f"{r['avg_speed_kmh']:.0f}",
            f"{r['max_speed_kmh']:.0f}",
            f"{(r['fuel_used_pct'] or 0):.1f}",
            r["stops"],
        )
        for r in rows[:200]
    ]
    return timeline(rows[:200]) + page.table(header, cells)
