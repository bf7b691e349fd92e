"""Speed by time and distance along each route (gold ``speed_heatmap``), and the rain on it
(gold ``rain_front``): the picture traffic engineers read to see jams form and move upstream.

Speed comes from both kinds of sensor: each vehicle reading counts once, each camera interval
as many times as the vehicles it counted (its speed is their mean), so a busy camera outweighs
one passing car.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import charts
from spark.reports.places import chainage, stations

NAME = "speed_heatmap"
TITLE = "Speed along the routes over time"
RAIN = "rain_front"
BUCKET_MINUTES = 5
BUCKET_KM = 1.0
RAIN_WINDOW = "15 minutes"


def observations(vehicle: DataFrame, traffic: DataFrame) -> DataFrame:
    """route_id, distance_km, timestamp, speed_kmh, weight: one row per reading."""
    cars = vehicle.select(
        "route_id", "distance_km", "timestamp", "speed_kmh", F.lit(1).cast("long").alias("weight")
    )
    cams = traffic.where(F.col("avg_speed_kmh").isNotNull() & (F.col("vehicle_count") > 0)).select(
        "route_id",
        "distance_km",
        "timestamp",
        F.col("avg_speed_kmh").alias("speed_kmh"),
        F.col("vehicle_count").alias("weight"),
    )
    return cars.unionByName(cams)


def build(vehicle: DataFrame, traffic: DataFrame) -> DataFrame:
    """route_id, time_bucket, km (bucket start), avg_speed_kmh (weighted), n (readings)."""
    obs = observations(vehicle, traffic)
    return (
        obs.groupBy(
            "route_id",
            F.window("timestamp", f"{BUCKET_MINUTES} minutes").start.alias("time_bucket"),
            (F.floor(F.col("distance_km") / BUCKET_KM) * BUCKET_KM).alias("km"),
        )
        .agg(
            (F.sum(F.col("speed_kmh") * F.col("weight")) / F.sum("weight")).alias("avg_speed_kmh"),
            F.count("*").alias("n"),
        )
        .orderBy("route_id", "time_bucket", "km")
    )


def rain(vehicle: DataFrame, weather: DataFrame) -> DataFrame:
    """Wet windows at each station placed on a route: route_id, station_id, distance_km,
    window_start, window_end, precipitation_mm (mean mm/h), weather_condition (latest)."""
    placed = chainage(stations(weather).select("id", "latitude", "longitude", "route_id"), vehicle)
    wet = (
        weather.groupBy(
            F.col("device_id").alias("id"), F.window("timestamp", RAIN_WINDOW).alias("w")
        )
        .agg(
            F.avg("precipitation_mm").alias("precipitation_mm"),
            F.max_by("weather_condition", "timestamp").alias("weather_condition"),
        )
        .where(F.col("precipitation_mm") > 0)
    )
    return (
        wet.join(F.broadcast(placed), "id")
        .select(
            F.col("c_route").alias("route_id"),
            F.col("id").alias("station_id"),
            F.col("c_km").alias("distance_km"),
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "precipitation_mm",
            "weather_condition",
        )
        .orderBy("route_id", "window_start", "distance_km")
    )


def summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["speed heat map: no readings"]
    routes = sorted({r["route_id"] for r in rows})
    slow = min(rows, key=lambda r: r["avg_speed_kmh"])
    return [
        f"speed heat map: {len(rows):,} cells ({BUCKET_MINUTES} min × {BUCKET_KM:g} km) on "
        f"{len(routes)} routes; slowest {slow['avg_speed_kmh']:.0f} km/h on {slow['route_id']} "
        f"km {slow['km']:g} at {slow['time_bucket']:%H:%M}"
    ]


def rain_summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["rain front: no rain at a station on a route"]
    stations_wet = {r["station_id"] for r in rows}
    first = min(rows, key=lambda r: r["window_start"])
    return [
        f"rain front: {len(stations_wet)} stations wet in {len(rows)} windows; first at "
        f"{first['station_id']} (km {first['distance_km']:g}) from {first['window_start']:%H:%M}"
    ]


def route_figure(
    route: str,
    cells: Sequence[Mapping[str, Any]],
    incidents: Sequence[Mapping[str, Any]],
    wet: Sequence[Mapping[str, Any]],
) -> go.Figure:
    """Time across, distance up: a jam is a red band; moving upstream, it slopes down."""
    times = sorted({c["time_bucket"] for c in cells})
    kms = sorted({c["km"] for c in cells})
    col = {t: i for i, t in enumerate(times)}
    row = {k: i for i, k in enumerate(kms)}
    z: list[list[float | None]] = [[None] * len(times) for _ in kms]
    n: list[list[int]] = [[0] * len(times) for _ in kms]
    for c in cells:
        z[row[c["km"]]][col[c["time_bucket"]]] = c["avg_speed_kmh"]
        n[row[c["km"]]][col[c["time_bucket"]]] = c["n"]
    fig = go.Figure(
        go.Heatmap(
            x=times,
            y=kms,
            z=z,
            customdata=n,
            zmin=0,
            zmax=charts.SPEED_MAX_KMH,
            colorscale=charts.SPEED_SCALE,
            colorbar={"title": {"text": "km/h"}, "thickness": 12},
            hovertemplate="%{x|%H:%M} UTC, km %{y}: %{z:.0f} km/h (%{customdata} readings)"
            "<extra></extra>",
            name="speed",
        )
    )
    for inc in incidents:
        fig.add_trace(
            go.Scatter(
                x=[inc["start"], inc["end"]],
                y=[inc["distance_km"], inc["distance_km"]],
                mode="lines+markers",
                line={"color": "#000", "width": 4},
                marker={"symbol": "x", "size": 9},
                name=charts.text(f"incident {inc['id']}"),
                hovertemplate=charts.text(f"{inc['id']}: {inc['label']}") + "<br>%{x|%H:%M} UTC"
                "<extra></extra>",
                showlegend=False,
            )
        )
    if wet:
        fig.add_trace(
            go.Scatter(
                x=[w["window_start"] + (w["window_end"] - w["window_start"]) / 2 for w in wet],
                y=[w["distance_km"] for w in wet],
                mode="markers",
                name="rain at a station",
                marker={
                    "symbol": "line-ns-open",
                    "size": [min(22, 8 + 3 * w["precipitation_mm"]) for w in wet],
                    "color": "#1f4fd6",
                    "line": {"width": 3, "color": "#1f4fd6"},
                },
                customdata=[
                    [charts.text(w["station_id"]), charts.text(w["weather_condition"])] for w in wet
                ],
                hovertemplate="%{customdata[0]}: %{customdata[1]}, %{x|%H:%M} UTC<extra></extra>",
            )
        )
    fig.update_layout(
        charts.layout(
            f"Speed along {route} (km from the route's start) over time",
            height=460,
            xaxis=charts.TIME_AXIS,
            yaxis={"title": {"text": "km from start"}, "tickformat": ",~r"},
            legend={"orientation": "h", "y": -0.2},
        )
    )
    return fig


def html(
    rows: Sequence[Mapping[str, Any]],
    places: Sequence[Mapping[str, Any]] = (),
    wet: Sequence[Mapping[str, Any]] = (),
) -> Markup:
    """One heat map per route, incidents (black: open from start to end) and rain overlaid."""
    if not rows:
        return charts.empty(TITLE)
    by_route: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_route.setdefault(r["route_id"], []).append(r)
    out = []
    for route, cells in sorted(by_route.items()):
        incidents = [
            p
            for p in places
            if p["kind"] == "incident" and p["route_id"] == route and p["distance_km"] is not None
        ]
        rain_here = [w for w in wet if w["route_id"] == route]
        out.append(charts.render(route_figure(route, cells, incidents, rain_here)))
    return Markup("").join(out)
