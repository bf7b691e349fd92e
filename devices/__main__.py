"""``python -m devices`` / ``cityfleet-devices``: run a scenario's fleet of virtual devices.

Examples:
  python -m devices --scenario london-birmingham --validate
  python -m devices --scenario smoke --dry-run
  python -m devices --scenario london-birmingham --speed 600 --manifest /tmp/manifest.json
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from cityconf.errors import UserError
from cityconf.keys import default
from devices.loader import ScenarioError, load


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise argparse.ArgumentTypeError("use i/n with 0 <= i < n, e.g. 0/4")
    return int(m[1]), int(m[2])


def _start(text: str) -> datetime:
    if text == "now":
        now = datetime.now(UTC)
        return now.replace(microsecond=now.microsecond // 1000 * 1000)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("use an ISO 8601 time or 'now'") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m devices",
        description="A SimPy fleet of virtual devices on real roads, publishing over MQTT.",
        epilog=__doc__.split("Examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenario", default="london-birmingham", help="YAML path or a name in scenarios/"
    )
    p.add_argument(
        "--speed", type=float, help="real-time clock at this speed factor (60 = 1 h/min)"
    )
    p.add_argument("--fast", action="store_true", help="as fast as possible (overrides the clock)")
    p.add_argument("--seed", type=int, help="override the scenario seed")
    p.add_argument("--duration", type=float, help="simulated seconds to run")
    p.add_argument(
        "--broker", help=f"MQTT broker, e.g. {default('MQTT_URL')} (default: MQTT_URL from .env)"
    )
    p.add_argument("--dry-run", action="store_true", help="print messages as JSON lines, no broker")
    p.add_argument("--validate", action="store_true", help="check the scenario and exit")
    p.add_argument("--manifest", type=Path, help="write per-device published/last_seq JSON here")
    p.add_argument("--shard", type=_shard, help="run shard i of n of the fleet, e.g. 0/4")
    p.add_argument("--state-dir", type=Path, help="where seq counters persist across runs")
    p.add_argument("--no-state", action="store_true", help="start every seq at 1 (no state file)")
    p.add_argument("--start", type=_start, help="simulated start time (ISO 8601) or 'now'")
    p.add_argument("--id-prefix", help="prefix of every device id (default: the scenario name)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line or summary")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    overrides: dict[str, object] = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.duration is not None:
        overrides["duration_s"] = args.duration
    if args.id_prefix is not None:
        overrides["id_prefix"] = args.id_prefix
    try:
        loaded = load(args.scenario, overrides)
    except ScenarioError as exc:
        print(exc.line(), file=sys.stderr)
        return 2
    if args.validate:
        sc = loaded.scenario
        n = sum(f.count for f in sc.vehicles)
        km = ", ".join(f"{r.route_id} {r.length_m / 1000:.1f} km" for r in loaded.routes.values())
        print(f"{loaded.path}: ok: scenario {sc.name}, {n} vehicles, routes: {km}")
        return 0
    from devices.app import Options, run_scenario

    options = Options(
        speed=None if args.fast else args.speed,
        fast=args.fast,
        broker=args.broker,
        dry_run=args.dry_run,
        manifest=args.manifest,
        shard=args.shard,
        state_dir=args.state_dir,
        no_state=args.no_state,
        start=args.start,
        quiet=args.quiet,
    )
    try:
        return run_scenario(loaded, options)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
