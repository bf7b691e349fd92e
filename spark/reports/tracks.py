"""Each trip's GPS track, thinned, with its speed (gold ``tracks``): the report's route map."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

import plotly.graph_objects as go
from markupsafe import Markup
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark.reports import charts

NAME = "tracks"
TITLE = "Routes, tracks and places"
POINTS = 24_000
"""About this many fixes in all, shared among devices: the map stays light in a browser."""
MIN_PER_DEVICE = 40


def trips(vehicle: DataFrame) -> DataFrame:
    """device_id, trip_id, route_id and the trip's time span, from the vehicle readings."""
    return vehicle.groupBy("device_id", "trip_id").agg(
        F.first("route_id").alias("route_id"),
        F.min("timestamp").alias("_start"),
        F.max("timestamp").alias("_end"),
    )


def build(gps: DataFrame, vehicle: DataFrame) -> DataFrame:
    """device_id, trip_id, route_id, seq, timestamp, longitude, latitude, speed_kmh.

    Every k-th fix per device (k from the device's fix count and its share of ``POINTS``),
    tagged with the trip whose time span holds it (GPS fixes do not carry the trip).
    """
    devices = gps.select("device_id").distinct().count()
    per_device = max(MIN_PER_DEVICE, POINTS // max(devices, 1))
    n = F.count("*").over(Window.partitionBy("device_id"))
    thinned = (
        gps.select("device_id", "seq", "timestamp", "longitude", "latitude", "speed_kmh")
        .withColumn("_step", F.greatest(F.lit(1), F.ceil(n / per_device)))
        .where(F.col("seq") % F.col("_step") == 0)
        .drop("_step")
    )
    t = F.broadcast(trips(vehicle)).alias("t")
    joined = thinned.alias("g").join(
        t,
        (F.col("g.device_id") == F.col("t.device_id"))
        & F.col("g.timestamp").between(F.col("t._start"), F.col("t._end")),
        "left",
    )
    return joined.select(
        "g.device_id",
        "t.trip_id",
        "t.route_id",
        "g.seq",
        "g.timestamp",
        "g.longitude",
        "g.latitude",
        "g.speed_kmh",
    ).orderBy("device_id", "seq")


def summary(rows: list[dict]) -> list[str]:
    if not rows:
        return ["tracks: no GPS fixes"]
    trips_seen = {(r["device_id"], r["trip_id"]) for r in rows}
    return [f"tracks: {len(rows):,} GPS fixes drawn for {len(trips_seen)} trips"]


PLACE_MARKERS = {
    "camera": ("square", "#1f77b4", "cameras"),
    "weather_station": ("triangle-up", "#7b3fa0", "weather stations"),
    "incident": ("x", "#d62728", "incidents"),
}


def html(rows: Sequence[Mapping[str, Any]], places: Sequence[Mapping[str, Any]] = ()) -> Markup:
    """Lon/lat map (equal aspect, no tiles: it opens offline): tracks coloured by speed,
    a thin line per trip under them, and the places on top."""
    if not rows and not places:
        return charts.empty(TITLE)
    fig = go.Figure()
    path_x: list[float | None] = []
    path_y: list[float | None] = []
    for _, fixes in groupby(rows, key=lambda r: (r["device_id"], r["trip_id"])):
        for r in fixes:
            path_x.append(r["longitude"])
            path_y.append(r["latitude"])
        path_x.append(None)
        path_y.append(None)
    fig.add_trace(
        go.Scatter(
            x=path_x,
            y=path_y,
            mode="lines",
            line={"color": "#bbb", "width": 1},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[r["longitude"] for r in rows],
            y=[r["latitude"] for r in rows],
            mode="markers",
            name="GPS fixes",
            marker={"size": 4, "color": [r["speed_kmh"] for r in rows], **charts.speed_colours()},
            customdata=[
                [
                    charts.text(r["device_id"]),
                    charts.text(r["trip_id"] or "-"),
                    f"{r['timestamp']:%H:%M:%S}",
                ]
                for r in rows
            ],
            hovertemplate="%{customdata[0]}<br>trip %{customdata[1]}<br>%{customdata[2]} UTC, "
            "%{marker.color:.0f} km/h<extra></extra>",
        )
    )
    for kind, (symbol, colour, label) in PLACE_MARKERS.items():
        these = [p for p in places if p["kind"] == kind]
        if not these:
            continue
        fig.add_trace(
            go.Scatter(
                x=[p["longitude"] for p in these],
                y=[p["latitude"] for p in these],
                mode="markers",
                name=label,
                marker={
                    "symbol": symbol,
                    "size": 10,
                    "color": colour,
                    "line": {"width": 1, "color": "#fff"},
                },
                customdata=[[charts.text(p["id"]), charts.text(p["label"])] for p in these],
                hovertemplate="%{customdata[0]}<br>%{customdata[1]}<extra></extra>",
            )
        )
    lats = [r["latitude"] for r in rows] + [p["latitude"] for p in places]
    fig.update_layout(
        charts.layout(
            "GPS tracks coloured by speed, with cameras, weather stations and incidents",
            height=620,
            xaxis={"title": {"text": "longitude"}},
            yaxis=charts.equal_aspect(lats),
            legend={"orientation": "h", "y": -0.08},
        )
    )
    return charts.render(fig)
