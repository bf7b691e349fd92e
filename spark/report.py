"""``python -m spark.report <name>|all``: gold tables, an HTML report and a terminal summary.

Reads each silver Delta table once, writes each report to its gold Delta table
(``gold/<name>/``, ``smartcity.gold_<name>`` once ``spark.sql`` registers it; each run is a
new version), writes one self-contained HTML file under ``reports/`` and prints a few lines
per report. The audit is the one core (``spark.audit``, delta-rs) the demo and the drills use,
so its verdict line is theirs; ``--audit-json PATH`` writes it as JSON for a caller to read.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from cityconf.env import REPO_ROOT, load_env
from cityconf.errors import UserError
from contract import EMERGENCY, GPS, TRAFFIC, VEHICLE, WEATHER, Stream
from contract.manifest import Manifest, ManifestError
from spark import audit as audit_core
from spark import lake
from spark.lake import default_root
from spark.reader import LakeReader
from spark.reports import (
    audit,
    congestion,
    heatmap,
    incidents,
    journeys,
    page,
    places,
    segments,
    tracks,
    weather,
)
from spark.schema import silver_schema

log = logging.getLogger("spark.report")
NAMES = (
    "journeys",
    "segments",
    "weather",
    "incidents",
    "congestion",
    "tracks",
    "places",
    "speed_heatmap",
    "rain_front",
    "audit",
)


@dataclass
class Silver:
    """The silver tables of one lake, each read once per report run.

    Vehicle rows feed four reports: they are kept (memory, spilling to disk) after the first
    read rather than fetched from S3 four times.
    """

    spark: SparkSession
    reader: LakeReader
    _frames: dict[str, DataFrame] = field(default_factory=dict)

    def __call__(self, stream: Stream) -> DataFrame:
        if stream.name not in self._frames:
            self._frames[stream.name] = self._read(stream)
        return self._frames[stream.name]

    def _read(self, stream: Stream) -> DataFrame:
        table = lake.silver(stream)
        if self.reader.table(table) is None:  # no batch has created it yet
            return self.spark.createDataFrame([], silver_schema(stream))
        df = self.spark.read.format("delta").load(self.reader.lake.uri(table))
        return df.persist(StorageLevel.MEMORY_AND_DISK) if stream is VEHICLE else df


def load_manifest(path: Path | None) -> Manifest | None:
    if path is None:
        return None
    try:
        return Manifest.read(path)
    except ManifestError as exc:
        raise UserError(f"--manifest {exc}", exit_code=2) from None


def audited(
    reader: LakeReader, manifest: Manifest | None, audit_json: Path | None
) -> audit_core.Audit:
    """The audit core's result, written to ``audit_json`` too when given: whoever ran the report
    (the demo) reads the verdict from that file, never from the printed lines."""
    result = audit_core.run(reader, manifest)
    if audit_json is not None:
        result.write(audit_json)
    return result


def gold_frames(
    silver: Silver, manifest: Manifest | None, audit_json: Path | None = None
) -> dict[str, Callable[[], DataFrame]]:
    v = lambda: silver(VEHICLE)  # noqa: E731
    return {
        "journeys": lambda: journeys.build(v()),
        "segments": lambda: segments.build(v()),
        "weather": lambda: weather.build(v(), silver(WEATHER)),
        "incidents": lambda: incidents.build(v(), silver(EMERGENCY)),
        "congestion": lambda: congestion.build(silver(TRAFFIC)),
        "tracks": lambda: tracks.build(silver(GPS), v()),
        "places": lambda: places.build(v(), silver(TRAFFIC), silver(WEATHER), silver(EMERGENCY)),
        "speed_heatmap": lambda: heatmap.build(v(), silver(TRAFFIC)),
        "rain_front": lambda: heatmap.rain(v(), silver(WEATHER)),
        "audit": lambda: audit.build(silver.spark, audited(silver.reader, manifest, audit_json)),
    }


SUMMARIES: dict[str, Callable[[list[dict]], list[str]]] = {
    "journeys": journeys.summary,
    "segments": segments.summary,
    "weather": weather.summary,
    "incidents": incidents.summary,
    "congestion": congestion.summary,
    "tracks": tracks.summary,
    "places": places.summary,
    "speed_heatmap": heatmap.summary,
    "rain_front": heatmap.rain_summary,
    "audit": audit.summary,
}


def sections(results: dict[str, list[dict]]) -> list[page.Section]:
    """The page's sections in reading order, each from the gold rows it shows (absent when
    its report was not run). The audit leads when it is not clean, else it closes the page."""

    def lines(*names: str) -> list[str]:
        return [line for n in names if n in results for line in SUMMARIES[n](results[n])]

    out: list[page.Section] = []
    audit_rows = results.get("audit")
    audit_section = (
        page.section("audit", audit.TITLE, lines("audit"), audit.html(audit_rows))
        if audit_rows is not None
        else None
    )
    if audit_section and not audit.clean(audit_rows or []):
        out.append(audit_section)
    if "tracks" in results or "places" in results:
        body = tracks.html(results.get("tracks", []), results.get("places", []))
        out.append(page.section("map", tracks.TITLE, lines("tracks", "places"), body))
    if "speed_heatmap" in results:
        body = heatmap.html(
            results["speed_heatmap"], results.get("places", []), results.get("rain_front", [])
        )
        out.append(
            page.section("heatmap", heatmap.TITLE, lines("speed_heatmap", "rain_front"), body)
        )
    for module in (journeys, weather, incidents, congestion, segments):
        if module.NAME in results:
            body = module.html(results[module.NAME])
            out.append(page.section(module.NAME, module.TITLE, lines(module.NAME), body))
    if audit_section and audit.clean(audit_rows or []):
        out.append(audit_section)
    return out


def write_html(results: dict[str, list[dict]], root: str, out_dir: Path) -> Path:
    from plotly.offline import get_plotlyjs

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cityfleet-{time.strftime('%Y%m%d-%H%M%S')}.html"
    audit_rows = results.get("audit")
    html = page.document(
        sections(results),
        root=root,
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        verdict=audit.verdict(audit_rows) if audit_rows is not None else "",
        clean=audit_rows is None or audit.clean(audit_rows),
        plotly_js=get_plotlyjs(),
    )
    path.write_text(html, encoding="utf-8")
    return path


def run(
    spark: SparkSession,
    reader: LakeReader,
    names: list[str],
    manifest: Manifest | None,
    out_dir: Path,
    audit_json: Path | None = None,
) -> tuple[dict[str, list[dict]], Path]:
    # The catalog (a Derby metastore, one process at a time) is left to `spark.sql`, which
    # registers the gold tables by location; writing by path keeps this job off its lock.
    silver = Silver(spark, reader)
    frames = gold_frames(silver, manifest, audit_json)
    results: dict[str, list[dict]] = {}
    for name in names:
        gold = frames[name]().cache()
        (
            gold.write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")  # a report that gained a column
            .save(reader.lake.uri(lake.gold(name)))
        )
        rows = [r.asDict(recursive=True) for r in gold.collect()]
        gold.unpersist()
        results[name] = rows
    return results, write_html(results, reader.lake.root, out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cityfleet-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=[*NAMES, "all"], help="which report (or all)")
    parser.add_argument("--output-root", help="lake root (default s3a://$S3_BUCKET/)")
    parser.add_argument("--manifest", type=Path, help="devices manifest JSON (for the audit)")
    parser.add_argument(
        "--audit-json",
        type=Path,
        metavar="PATH",
        help="also write the audit (verdict, totals, rows) as JSON here; needs the audit report",
    )
    parser.add_argument("--reports-dir", type=Path, default=REPO_ROOT / "reports")
    parser.add_argument("--master", help="Spark master (default local[2])")
    parser.add_argument(
        "--screenshot", type=Path, help="also save a PNG of the report's top (headless Chromium)"
    )
    args = parser.parse_args(argv)
    if args.audit_json and args.name not in ("audit", "all"):
        parser.error("--audit-json needs the audit report: name `audit` or `all`")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        env = load_env()
        root = default_root(env, args.output_root)
        manifest = load_manifest(args.manifest)
        from spark.session import build_session

        spark = build_session("cityfleet-report", env, master=args.master)
        names = list(NAMES) if args.name == "all" else [args.name]
        reader = LakeReader.from_env(env, root)
        results, html = run(spark, reader, names, manifest, args.reports_dir, args.audit_json)
    except UserError as exc:
        print(f"cityfleet-report: {exc}", file=sys.stderr)
        return exc.exit_code
    for name, rows in results.items():
        for line in SUMMARIES[name](rows):
            print(line)
    print(f"HTML report: {html}")
    if args.screenshot:
        from spark.reports.shot import screenshot

        try:
            print(f"screenshot: {screenshot(html, args.screenshot)}")
        except UserError as exc:
            print(f"cityfleet-report: {exc}", file=sys.stderr)
            return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
