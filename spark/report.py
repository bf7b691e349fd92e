"""``python -m spark.report <name>|all``: gold tables, an HTML report and a terminal summary.

Reads silver (and, for the audit, bronze, quarantine and late), writes ``gold/<name>/`` as
Parquet, registers ``smartcity.gold_<name>``, writes one self-contained HTML file under
``reports/`` and prints a few lines per report; the audit ends with its verdict line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from contract import DATA_STREAMS, EMERGENCY, GPS, TRAFFIC, VEHICLE, WEATHER, Stream
from spark.catalog import path_exists, persistent, register_gold, register_silver
from spark.reports import audit, congestion, incidents, journeys, segments, weather
from spark.schema import silver_schema
from spark.settings import output_root
from stack.env import REPO_ROOT, load_env
from stack.errors import StackError

log = logging.getLogger("spark.report")
NAMES = ("journeys", "segments", "weather", "incidents", "congestion", "audit")


@dataclass
class Lake:
    spark: SparkSession
    root: str
    _frames: dict[tuple[str, str], DataFrame | None] = field(default_factory=dict)

    def layer(self, layer: str, stream: Stream) -> DataFrame | None:
        """One table of the lake; read once per run, so its files are listed once."""
        key = (layer, stream.name)
        if key not in self._frames:
            self._frames[key] = self._read(layer, stream)
        return self._frames[key]

    def _read(self, layer: str, stream: Stream) -> DataFrame | None:
        path = f"{self.root.rstrip('/')}/{layer}/{stream.kafka_topic}"
        if not path_exists(self.spark, path):
            return None
        try:
            return self.spark.read.parquet(path)
        except AnalysisException as exc:
            # a folder holding no Parquet yet (only the commit log, or an empty first batch)
            if "UNABLE_TO_INFER_SCHEMA" in str(exc):
                return None
            raise

    def silver(self, stream: Stream) -> DataFrame:
        df = self.layer("silver", stream)
        return df if df is not None else self.spark.createDataFrame([], silver_schema(stream))


def load_manifest(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        devices = json.loads(path.read_text())["devices"]
    except FileNotFoundError:
        raise StackError(f"--manifest {path}: no such file", exit_code=2) from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StackError(
            f'--manifest {path}: expected {{"devices": {{id: {{stream: {{"published": N, '
            f'"last_seq": N}}}}}}}} ({exc})',
            exit_code=2,
        ) from None
    return devices


def gold_frames(lake: Lake, manifest: dict | None) -> dict[str, Callable[[], DataFrame]]:
    v = lambda: lake.silver(VEHICLE)  # noqa: E731
    return {
        "journeys": lambda: journeys.build(v()),
        "segments": lambda: segments.build(v()),
        "weather": lambda: weather.build(v(), lake.silver(WEATHER)),
        "incidents": lambda: incidents.build(v(), lake.silver(EMERGENCY)),
        "congestion": lambda: congestion.build(lake.silver(TRAFFIC)),
        "audit": lambda: audit.build(
            lake.spark,
            {
                s.name: {
                    "silver": lake.silver(s),
                    "late": lake.layer("late", s),
                    "bronze": lake.layer("bronze", s),
                    "quarantine": lake.layer("quarantine", s),
                }
                for s in DATA_STREAMS
            },
            manifest,
        ),
    }


MODULES = {
    "journeys": journeys,
    "segments": segments,
    "weather": weather,
    "incidents": incidents,
    "congestion": congestion,
    "audit": audit,
}


def section(name: str, rows: list[dict], lake: Lake) -> str:
    module = MODULES[name]
    if name == "journeys":
        points: dict[str, list[tuple[float, float]]] = {}
        for r in journeys.positions(lake.silver(GPS)).collect():
            points.setdefault(r["device_id"], []).append((r["longitude"], r["latitude"]))
        body = journeys.html(rows, points)
    else:
        body = module.html(rows)
    lines = "".join(f"<li>{escape(x)}</li>" for x in module.summary(rows))
    return f"<section><h2>{escape(module.TITLE)}</h2><ul>{lines}</ul>{body}</section>"


def write_html(sections: list[str], root: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cityfleet-{time.strftime('%Y%m%d-%H%M%S')}.html"
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "tr.bad td{background:#fdd}section{margin-bottom:2em}"
    )
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>CityFleet report</title>"
        f"<style>{style}</style></head><body><h1>CityFleet report</h1>"
        f"<p>Lake {escape(root)}, generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')}</p>"
        + "".join(sections)
        + "</body></html>",
        encoding="utf-8",
    )
    return path


def run(
    spark: SparkSession, root: str, names: list[str], manifest: dict | None, out_dir: Path
) -> tuple[dict[str, list[dict]], Path]:
    # In Spark's in-session catalog a table dies with the session: `spark.sql` registers the
    # lake itself. Only a metastore (Hive, Glue) is worth the partition scan here.
    catalog = persistent(spark)
    if catalog:
        register_silver(spark, root)
    lake = Lake(spark, root)
    frames = gold_frames(lake, manifest)
    results: dict[str, list[dict]] = {}
    sections = []
    for name in names:
        gold = frames[name]().cache()
        gold.write.mode("overwrite").parquet(f"{root.rstrip('/')}/gold/{name}")
        if catalog:
            register_gold(spark, root, name)
        rows = [r.asDict(recursive=True) for r in gold.collect()]
        gold.unpersist()
        results[name] = rows
        sections.append(section(name, rows, lake))
    return results, write_html(sections, root, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cityfleet-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=[*NAMES, "all"], help="which report (or all)")
    parser.add_argument("--output-root", help="lake root (default s3a://$S3_BUCKET/)")
    parser.add_argument("--manifest", type=Path, help="devices manifest JSON (for the audit)")
    parser.add_argument("--reports-dir", type=Path, default=REPO_ROOT / "reports")
    parser.add_argument("--master", help="Spark master (default local[2])")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        env = load_env()
        root = output_root(env, args.output_root)
        manifest = load_manifest(args.manifest)
        from spark.session import build_session

        spark = build_session("cityfleet-report", env, master=args.master)
        names = list(NAMES) if args.name == "all" else [args.name]
        results, html = run(spark, root, names, manifest, args.reports_dir)
    except StackError as exc:
        print(f"cityfleet-report: {exc}", file=sys.stderr)
        return exc.exit_code
    for name, rows in results.items():
        for line in MODULES[name].summary(rows):
            print(line)
    print(f"HTML report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
