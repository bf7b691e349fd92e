"""Completeness audit: per device and stream, what was expected against what the lake holds.

Every bronze record ends in exactly one of: quarantine, late, silver, or dropped as a
duplicate. So per (stream, device): ``duplicates_removed = bronze − quarantined − late −
silver``. ``expected`` is the manifest's ``last_seq`` when one is given, else the highest
seq seen; ``missing`` counts the seqs 1..expected found in neither silver nor late.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from contract import DATA_STREAMS

NAME = "audit"
TITLE = "Completeness audit"
KEY = ["stream", "device_id"]


def _per_device(df: DataFrame | None, device: F.Column, name: str) -> DataFrame | None:
    if df is None:
        return None
    return df.groupBy(device.alias("device_id")).agg(F.count("*").alias(name))


def _stream_audit(
    stream: str,
    silver: DataFrame,
    late: DataFrame | None,
    bronze: DataFrame | None,
    quarantine: DataFrame | None,
) -> DataFrame:
    keys = silver.select("device_id", "seq")
    if late is not None:
        keys = keys.unionByName(late.select("device_id", "seq"))
    seqs = keys.distinct()
    w = Window.partitionBy("device_id").orderBy("seq")
    gaps = (
        seqs.withColumn("_prev", F.coalesce(F.lag("seq").over(w), F.lit(0)))
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
    silver_rows = silver.groupBy("device_id").agg(F.count("*").alias("silver_rows"))
    out = received.join(silver_rows, "device_id", "full").join(gaps, "device_id", "left")
    parts = [
        _per_device(late, F.col("device_id"), "late_rows"),
        _per_device(
            bronze, F.get_json_object(F.col("value").cast("string"), "$.device_id"), "bronze_rows"
        ),
        _per_device(quarantine, F.get_json_object("payload", "$.device_id"), "quarantined"),
    ]
    for part, name in zip(parts, ("late_rows", "bronze_rows", "quarantined"), strict=True):
        out = (
            out.join(part, "device_id", "full")
            if part is not None
            else out.withColumn(name, F.lit(0).cast("long"))
        )
    return out.withColumn("stream", F.lit(stream))


def build(
    spark: SparkSession,
    layers: Mapping[str, Mapping[str, DataFrame | None]],
    manifest: Mapping[str, Mapping[str, Mapping[str, int]]] | None = None,
) -> DataFrame:
    """``layers``: stream name → {"silver", "late", "bronze", "quarantine"} DataFrames."""
    per_stream = [
        _stream_audit(name, t["silver"], t.get("late"), t.get("bronze"), t.get("quarantine"))
        for name, t in layers.items()
    ]
    audit = per_stream[0]
    for part in per_stream[1:]:
        audit = audit.unionByName(part)
    audit = audit.where(F.col("device_id").isNotNull())
    if manifest:
        expected = spark.createDataFrame(
            [
                (stream, device, int(f.get("last_seq", f.get("published", 0))))
                for device, streams in manifest.items()
                for stream, f in streams.items()
                if stream in layers  # e.g. presence (status) has no seq to audit
            ],
            T.StructType(
                [
                    T.StructField("stream", T.StringType()),
                    T.StructField("device_id", T.StringType()),
                    T.StructField("manifest_last_seq", T.LongType()),
                ]
            ),
        )
        audit = audit.join(expected, KEY, "full")
    else:
        audit = audit.withColumn("manifest_last_seq", F.lit(None).cast("long"))
    z = lambda c: F.coalesce(F.col(c), F.lit(0))  # noqa: E731
    expected_col = F.coalesce(F.col("manifest_last_seq"), F.col("max_seq"), F.lit(0))
    return (
        audit.withColumn("expected", expected_col)
        .withColumn(
            "missing",
            z("missing_inside") + F.greatest(F.lit(0), F.col("expected") - z("max_seq")),
        )
        .withColumn(
            "duplicates_removed",
            z("bronze_rows") - z("quarantined") - z("late_rows") - z("silver_rows"),
        )
        .select(
            *KEY,
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
    total = sum(r["received"] for r in rows)
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
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join(
        "<tr"
        + (' class="bad"' if r["missing"] else "")
        + ">"
        + "".join(f"<td>{r[c]}</td>" for c in cols)
        + "</tr>"
        for r in rows[:500]
    )
    return f"<p><b>{verdict(rows)}</b></p><table><tr>{head}</tr>{body}</table>"


STREAM_NAMES = tuple(s.name for s in DATA_STREAMS)
