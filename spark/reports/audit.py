"""Completeness audit: per device and stream, what was expected against what the lake holds.

Every bronze record ends in exactly one of: quarantine, late, silver, or dropped as a
duplicate. So per (stream, device): ``duplicates_removed = bronze − quarantined − late −
silver``. ``expected`` counts the seqs from the manifest's ``first_seq`` to its ``last_seq``
when one is given (the run it describes), else 1 to the highest seq seen; ``missing`` counts
the expected seqs found in neither silver nor late.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from contract import DATA_STREAMS
from spark.reports import svg

NAME = "audit"
TITLE = "Completeness audit"
KEY = ["stream", "device_id"]


def _keys(df: DataFrame | None, json_col: str | None = None) -> DataFrame | None:
    """(device_id, seq) of each row; raw layers hold them inside the JSON payload."""
    if df is None:
        return None
    if json_col is None:
        return df.select("device_id", "seq")
    # json_tuple parses each payload once for both fields (get_json_object would parse twice).
    pair = df.select(F.json_tuple(F.col(json_col).cast("string"), "device_id", "seq"))
    return pair.select(F.col("c0").alias("device_id"), F.col("c1").cast("long").alias("seq"))


def _scoped(keys: DataFrame | None, bounds: DataFrame | None) -> DataFrame | None:
    """Only the rows of the run ``bounds`` describes: its devices, its seq range."""
    if keys is None or bounds is None:
        return keys
    return (
        keys.join(F.broadcast(bounds), "device_id")
        .where(F.col("seq").between(F.col("first_seq"), F.col("last_seq")))
        .select("device_id", "seq")
    )


def _count(keys: DataFrame | None, name: str) -> DataFrame | None:
    return None if keys is None else keys.groupBy("device_id").agg(F.count("*").alias(name))


def _stream_audit(
    stream: str,
    silver: DataFrame,
    late: DataFrame | None,
    bronze: DataFrame | None,
    quarantine: DataFrame | None,
    bounds: DataFrame | None,
) -> DataFrame:
    silver_k = _scoped(_keys(silver), bounds)
    late_k = _scoped(_keys(late), bounds)
    assert silver_k is not None
    seqs = (silver_k if late_k is None else silver_k.unionByName(late_k)).distinct()
    if bounds is not None:
        start = seqs.join(F.broadcast(bounds), "device_id").select(
            "device_id", "seq", (F.col("first_seq") - 1).alias("_start")
        )
    else:
        start = seqs.withColumn("_start", F.lit(0).cast("long"))
    w = Window.partitionBy("device_id").orderBy("seq")
    gaps = (
        start.withColumn("_prev", F.coalesce(F.lag("seq").over(w), F.col("_start")))
        .where(F.col("seq") - F.col("_prev") > 1)
        .groupBy("device_id")
        .agg(
            F.sum(F.col("seq") - F.col("_prev") - 1).alias("missing_inside"),
            F.array_sort(
                F.collect_list(
                    F.concat_ws(
                        "-", (F.col("_prev") + 1).cast("string"), (F.col("seq") - 1).cast("string")
                    )
                )
            ).alias("gap_ranges"),
        )
    )
    received = seqs.groupBy("device_id").agg(
        F.count("*").alias("received"), F.max("seq").alias("max_seq")
    )
    out = received.join(gaps, "device_id", "left")
    parts = {
        "silver_rows": silver_k,
        "late_rows": late_k,
        "bronze_rows": _scoped(_keys(bronze, "value"), bounds),
        "quarantined": _scoped(_keys(quarantine, "payload"), bounds),
    }
    for name, keys in parts.items():
        counted = _count(keys, name)
        out = (
            out.join(counted, "device_id", "full")
            if counted is not None
            else out.withColumn(name, F.lit(0).cast("long"))
        )
    return out.withColumn("stream", F.lit(stream))


BOUNDS = T.StructType(
    [
        T.StructField("stream", T.StringType()),
        T.StructField("device_id", T.StringType()),
        T.StructField("first_seq", T.LongType()),
        T.StructField("last_seq", T.LongType()),
    ]
)


def manifest_bounds(
    spark: SparkSession, manifest: Mapping[str, Mapping[str, Mapping[str, int]]]
) -> DataFrame:
    """(stream, device_id, first_seq, last_seq) that a devices run says it published."""
    return spark.createDataFrame(
        [
            (stream, device, int(f.get("first_seq", 1)), int(f.get("last_seq", f["published"])))
            for device, streams in manifest.items()
            for stream, f in streams.items()
            if stream in {s.name for s in DATA_STREAMS}  # presence (status) has no seq
        ],
        BOUNDS,
    )


def build(
    spark: SparkSession,
    layers: Mapping[str, Mapping[str, DataFrame | None]],
    manifest: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
) -> DataFrame:
    """``layers``: stream name → {"silver", "late", "bronze", "quarantine"} DataFrames.

    With a ``manifest`` the audit covers exactly the run it describes: its devices and, per
    device and stream, the seqs from ``first_seq`` to ``last_seq``. Without one it covers the
    whole lake, expecting seqs 1 up to the highest seen.
    """
    bounds = manifest_bounds(spark, manifest) if manifest else None
    per_stream = [
        _stream_audit(
            name,
            t["silver"],
            t.get("late"),
            t.get("bronze"),
            t.get("quarantine"),
            None if bounds is None else bounds.where(F.col("stream") == name).drop("stream"),
        )
        for name, t in layers.items()
    ]
    audit = per_stream[0]
    for part in per_stream[1:]:
        audit = audit.unionByName(part)
    audit = audit.where(F.col("device_id").isNotNull())
    if bounds is not None:
        audit = bounds.where(F.col("stream").isin(list(layers))).join(audit, KEY, "left")
    else:
        audit = audit.withColumn("first_seq", F.lit(1).cast("long")).withColumn(
            "last_seq", F.col("max_seq")
        )
    z = lambda c: F.coalesce(F.col(c), F.lit(0))  # noqa: E731
    first = F.col("first_seq")
    last = F.coalesce(F.col("last_seq"), F.lit(0))
    return (
        audit.withColumn("expected", F.greatest(F.lit(0), last - first + 1))
        .withColumn(
            "missing",
            z("missing_inside")
            + F.greatest(F.lit(0), last - F.coalesce(F.col("max_seq"), first - 1)),
        )
        .withColumn(
            "duplicates_removed",
            z("bronze_rows") - z("quarantined") - z("late_rows") - z("silver_rows"),
        )
        .select(
            *KEY,
            "first_seq",
            "expected",
            z("received").alias("received"),
            "missing",
            F.coalesce("gap_ranges", F.array().cast("array<string>")).alias("gap_ranges"),
            z("silver_rows").alias("silver_rows"),
            "duplicates_removed",
            z("late_rows").alias("late_rows"),
            z("quarantined").alias("quarantined"),
            z("bronze_rows").alias("bronze_rows"),
        )
        .orderBy(*KEY)
    )


def verdict(rows: list[dict]) -> str:
    total = sum(r["expected"] for r in rows)
    missing = [r for r in rows if r["missing"]]
    if not missing:
        return f"audit: OK, {total:,} messages, 0 missing"
    where = "; ".join(
        f"{r['stream']}/{r['device_id']} {r['missing']} "
        f"({', '.join(r['gap_ranges'][:3]) or 'at the end'})"
        for r in missing[:10]
    )
    return f"audit: MISSING {sum(r['missing'] for r in missing):,} of {total:,} messages: {where}"


def summary(rows: list[dict]) -> list[str]:
    dup = sum(r["duplicates_removed"] for r in rows)
    late = sum(r["late_rows"] for r in rows)
    quarantined = sum(r["quarantined"] for r in rows)
    return [
        f"audit: {len({r['device_id'] for r in rows})} devices, {len(rows)} device streams; "
        f"{dup:,} duplicates removed, {late:,} late rows kept aside, {quarantined:,} quarantined",
        verdict(rows),
    ]


def html(rows: list[dict]) -> str:
    cols = [
        "stream",
        "device_id",
        "expected",
        "received",
        "missing",
        "duplicates_removed",
        "late_rows",
        "quarantined",
    ]
    shown = rows[:500]
    table = svg.table(
        cols, [[r[c] for c in cols] for r in shown], [bool(r["missing"]) for r in shown]
    )
    return f"<p><b>{escape(verdict(rows))}</b></p>{table}"


STREAM_NAMES = tuple(s.name for s in DATA_STREAMS)
