"""Camera congestion over time: vehicles counted and mean speed per camera per 15 minutes."""

from __future__ import annotations

import plotly.graph_objects as go
from markupsafe import Markup
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark.reports import charts

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


def html(rows: list[dict]) -> Markup:
    """Mean speed per camera and 15 minutes, cameras by route and name, time of day across."""
    if not rows:
        return charts.empty(TITLE)
    names = {v: k for k, v in LEVELS.items()}
    cams = sorted({(r["route_id"] or "", r["camera_id"]) for r in rows}, reverse=True)
    times = sorted({r["window_start"] for r in rows})
    y = {cam: i for i, (_, cam) in enumerate(cams)}
    x = {t: i for i, t in enumerate(times)}
    z: list[list[float | None]] = [[None] * len(times) for _ in cams]
    info: list[list[list[str]]] = [[["", "", ""]] * len(times) for _ in cams]
    for r in rows:
        i, j = y[r["camera_id"]], x[r["window_start"]]
        z[i][j] = r["avg_speed_kmh"]
        info[i][j] = [
            charts.text(r["camera_id"]),
            f"{r['vehicles']:,}",
            names.get(r["worst_level"], "?"),
        ]
    fig = go.Figure(
        go.Heatmap(
            x=times,
            y=[charts.text(cam) for _, cam in cams],
            z=z,
            customdata=info,
            zmin=0,
            zmax=charts.SPEED_MAX_KMH,
            colorscale=charts.SPEED_SCALE,
            colorbar={"title": {"text": "km/h"}, "thickness": 12},
            hovertemplate="%{customdata[0]}<br>%{x|%H:%M} UTC: %{z:.0f} km/h, "
            "%{customdata[1]} vehicles, worst %{customdata[2]}<extra></extra>",
        )
    )
    fig.update_layout(
        charts.layout(
            "Mean speed at each camera per 15 minutes",
            height=max(260, 90 + 26 * len(cams)),
            xaxis=charts.TIME_AXIS,
            yaxis={"type": "category", "title": {"text": "camera"}},
        )
    )
    return charts.render(fig)
