"""The completeness audit as a report: the core's rows (``spark.audit``) as gold and HTML.

The figures and the verdict come from the one audit core the demo and the fault drill use;
this module only turns them into the gold table, the summary lines and the HTML section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup
from pyspark.sql import DataFrame, SparkSession

from spark import audit as core
from spark.reports import page

NAME = "audit"
TITLE = "Completeness audit"
verdict = core.verdict
summary = core.summary


def build(spark: SparkSession, result: core.Audit) -> DataFrame:
    """The gold table: one row per device stream, in the core's order."""
    return spark.createDataFrame(result.table(), core.GOLD_SCHEMA)


def bad(row: Mapping[str, Any]) -> bool:
    """A device stream with a message missing or held twice in silver."""
    return bool(row["missing"] or row.get("silver_duplicates"))


def clean(rows: Sequence[Mapping[str, Any]]) -> bool:
    return not any(bad(r) for r in rows)


def html(rows: Sequence[Mapping[str, Any]]) -> Markup:
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
    table = page.table(
        cols,
        [[r.get(c, 0) for c in cols] for r in shown],
        [bad(r) for r in shown],
    )
    return page.note(verdict(rows)) + table
