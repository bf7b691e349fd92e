"""Where things stand along the routes: cameras, weather stations and incidents (gold ``places``).

Each place has its position and, where it can be placed on a route, its chainage (km from the
route's start). Cameras report theirs; stations and incidents take that of the nearest vehicle
reading (vehicles report ``distance_km`` along their route), so the speed heat map can draw them
on its distance axis without any route geometry in the report.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark.reports.geo import distance_km
from spark.reports.incidents import lifecycles

NAME = "places"
TITLE = "Places"
MAX_OFF_ROUTE_KM = 5.0
"""A station further than this from every vehicle reading is on no route we saw."""
KINDS = ("camera", "weather_station", "incident")


def route_points(vehicle: DataFrame) -> DataFrame:
    """Vehicle readings thinned to one per route and 100 m: the routes as the fleet drove them."""
    return vehicle.select(
        F.col("route_id").alias("v_route"),
        F.round("distance_km", 1).alias("v_km"),
        F.col("latitude").alias("v_lat"),
        F.col("longitude").alias("v_lon"),
    ).dropDuplicates(["v_route", "v_km"])


def chainage(points: DataFrame, vehicle: DataFrame) -> DataFrame:
    """``points`` (id, latitude, longitude, route_id or null) → id, route_id, distance_km.

    The nearest vehicle reading (on the point's own route when it names one) gives the route
    and the distance along it; points further than ``MAX_OFF_ROUTE_KM`` get none.
    """
    near = (
        F.broadcast(points)
        .join(
            route_points(vehicle),
            F.col("route_id").isNull() | (F.col("route_id") == F.col("v_route")),
        )
        .withColumn(
            "_d", distance_km(F.col("latitude"), F.col("longitude"), F.col("v_lat"), F.col("v_lon"))
        )
        .groupBy("id")
        .agg(F.min_by(F.struct("v_route", "v_km"), "_d").alias("n"), F.min("_d").alias("_off"))
        .where(F.col("_off") <= MAX_OFF_ROUTE_KM)
    )
    return near.select("id", F.col("n.v_route").alias("c_route"), F.col("n.v_km").alias("c_km"))


def stations(weather: DataFrame) -> DataFrame:
    return weather.groupBy(F.col("device_id").alias("id")).agg(
        F.first("latitude").alias("latitude"),
        F.first("longitude").alias("longitude"),
        F.lit(None).cast(T.StringType()).alias("route_id"),
        F.format_string(
            "last %s, %.1f °C",
            F.max_by("weather_condition", "timestamp"),
            F.max_by("temperature_c", "timestamp"),
        ).alias("label"),
        F.min("timestamp").alias("start"),
        F.max("timestamp").alias("end"),
    )


def cameras(traffic: DataFrame) -> DataFrame:
    return traffic.groupBy(F.col("camera_id").alias("id")).agg(
        F.first("latitude").alias("latitude"),
        F.first("longitude").alias("longitude"),
        F.first("route_id").alias("route_id"),
        F.first("distance_km").alias("distance_km"),
        F.format_string("%,d vehicles counted", F.sum("vehicle_count")).alias("label"),
        F.min("timestamp").alias("start"),
        F.max("timestamp").alias("end"),
    )


def incidents(emergency: DataFrame) -> DataFrame:
    return lifecycles(emergency).select(
        F.col("incident_id").alias("id"),
        F.col("inc_lat").alias("latitude"),
        F.col("inc_lon").alias("longitude"),
        "route_id",
        F.format_string("%s, severity %d", "type", "severity").alias("label"),
        F.col("opened").alias("start"),
        F.col("closed").alias("end"),
        "radius_km",
    )


def build(
    vehicle: DataFrame, traffic: DataFrame, weather: DataFrame, emergency: DataFrame
) -> DataFrame:
    """kind, id, route_id, latitude, longitude, distance_km, label, start, end, radius_km."""
    placed = []
    for kind, frame in (("weather_station", stations(weather)), ("incident", incidents(emergency))):
        on_route = chainage(frame.select("id", "latitude", "longitude", "route_id"), vehicle)
        placed.append(
            frame.join(on_route, "id", "left").select(
                F.lit(kind).alias("kind"),
                "id",
                F.coalesce("route_id", "c_route").alias("route_id"),
                "latitude",
                "longitude",
                F.col("c_km").alias("distance_km"),
                "label",
                "start",
                "end",
                (F.col("radius_km") if "radius_km" in frame.columns else F.lit(None))
                .cast(T.DoubleType())
                .alias("radius_km"),
            )
        )
    cams = cameras(traffic).select(
        F.lit("camera").alias("kind"),
        "id",
        "route_id",
        "latitude",
        "longitude",
        "distance_km",
        "label",
        "start",
        "end",
        F.lit(None).cast(T.DoubleType()).alias("radius_km"),
    )
    return cams.unionByName(placed[0]).unionByName(placed[1]).orderBy("kind", "route_id", "id")


def summary(rows: list[dict]) -> list[str]:
    counts = {k: sum(r["kind"] == k for r in rows) for k in KINDS}
    unplaced = sum(r["distance_km"] is None for r in rows)
    return [
        f"places: {counts['camera']} cameras, {counts['weather_station']} weather stations, "
        f"{counts['incident']} incidents; {unplaced} not placed on a route"
    ]
