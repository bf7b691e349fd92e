"""The completeness audit as a report: the core's rows (``spark.audit``) as gold and HTML.

The figures and the verdict come from the one audit core the demo and the fault drill use;
this module only turns them into the gold table, the summary lines and the HTML section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from spark import audit as core
from spark.reports import svg

NAME = "audit"
TITLE = "Completeness audit"
verdict = core.verdict
summary = core.summary


def build(spark: SparkSession, result: core.Audit) -> DataFrame:
    """The gold table: one row per device stream, in the core's order."""
    return spark.createDataFrame(result.table(), core.GOLD_SCHEMA)


def html(rows: Sequence[Mapping[str, Any]]) -> str:
    cols = [
        "stream",
        "device_id",
        "expected",
        "received",
        "missing",
        "silver_duplicates",
        "duplicates_removed",
        "late_rows",
        "quarantined",
    ]
    shown = rows[:500]
    table = svg.table(
        cols,
        [[r.get(c, 0) for c in cols] for r in shown],
        [bool(r["missing"] or r.get("silver_duplicates")) for r in shown],
    )
    return f"<p><b>{escape(verdict(rows))}</b></p>{table}"
