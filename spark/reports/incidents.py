"""Incidents and the speed drop near them: vehicles within an incident's radius while it is
open, against the same stretch of road when it is not."""

from __future__ import annotations

import plotly.graph_objects as go
from markupsafe import Markup
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import charts
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


def html(rows: list[dict]) -> Markup:
    """Each incident as a bar from opened to closed, coloured by the speed drop near it."""
    if not rows:
        return charts.empty(TITLE)
    shown = rows[:60]
    fig = go.Figure(
        go.Bar(
            base=[r["opened"] for r in shown],
            x=[(r["closed"] - r["opened"]).total_seconds() * 1000 for r in shown],
            y=[charts.text(r["incident_id"]) for r in shown],
            orientation="h",
            marker={
                "color": [r["speed_drop_pct"] or 0.0 for r in shown],
                "colorscale": "Reds",
                "cmin": 0,
                "cmax": 100,
                "colorbar": {"title": {"text": "speed drop %"}, "thickness": 12},
            },
            customdata=[
                [
                    charts.text(r["incident_id"]),
                    charts.text(r["type"]),
                    r["severity"],
                    "-" if r["speed_during_kmh"] is None else f"{r['speed_during_kmh']:.0f}",
                    "-" if r["speed_otherwise_kmh"] is None else f"{r['speed_otherwise_kmh']:.0f}",
                    f"{r['opened']:%H:%M}",
                    f"{r['closed']:%H:%M}",
                ]
                for r in shown
            ],
            hovertemplate="%{customdata[0]}: %{customdata[1]}, severity %{customdata[2]}<br>"
            "open %{customdata[5]}-%{customdata[6]} UTC<br>"
            "%{customdata[3]} km/h nearby while open, %{customdata[4]} otherwise<extra></extra>",
        )
    )
    fig.update_layout(
        charts.layout(
            "Incidents: when open, and the speed drop near them",
            height=max(240, 100 + 24 * len(shown)),
            xaxis=charts.TIME_AXIS,
            yaxis={"type": "category", "autorange": "reversed", "title": {"text": "incident"}},
        )
    )
    return charts.render(fig)
