"""`python -m benchmarks [--quick] [--only STAGE ...]`: every stage, one table, one file."""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from pathlib import Path

from benchmarks.results import Row, against_bridge, bridge_rate, print_table, write
from cityconf.env import REPO_ROOT, load_env

STAGES = ("devices", "bridge", "spark", "pipeline")
README = REPO_ROOT / "README.md"
MARKERS = ("<!-- benchmarks:start -->", "<!-- benchmarks:end -->")


def update_readme(md_path: Path) -> None:
    """Replace the README's benchmark table (between the markers) with this run's."""
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    if start not in text or end not in text:
        return
    table = md_path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    README.write_text(pattern.sub(lambda _: f"{start}\n{table}{end}", text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs, each warm (about 11 minutes on two cores)",
    )
    parser.add_argument("--only", nargs="+", choices=STAGES, help="run only these stages")
    parser.add_argument("--no-readme", action="store_true", help="don't update README's table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    env = load_env()
    rows: list[Row] = []
    failed: list[str] = []
    for stage in args.only or STAGES:
        try:
            module = importlib.import_module(f"benchmarks.{stage}")
        except ModuleNotFoundError:
            print(f"benchmarks: stage {stage!r} is not built yet, skipped", file=sys.stderr)
            continue
        print(f"==> benchmark: {stage}", file=sys.stderr)
        # Spark's batches are sized by the bridge's rate of this run (benchmarks.spark).
        extra = {"bridge_rate": bridge_rate(rows)} if stage == "spark" else {}
        try:
            rows += module.run(env, args.quick, **extra)
        except Exception as exc:  # one failing stage must not hide the others' figures
            logging.exception("stage %s failed", stage)
            failed.append(f"{stage}: {exc}")
    rows += against_bridge(rows)
    print_table(rows, "CityFleet benchmarks" + (" (quick)" if args.quick else ""))
    # A quick run never overwrites the day's full run, which the README quotes.
    json_path, md_path = write(rows, "quick" if args.quick else None)
    print(f"results: {json_path}\n         {md_path}")
    if not args.no_readme and not args.quick:
        update_readme(md_path)
    for line in failed:
        print(f"benchmark failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
