"""``make demo``: the whole pipeline on one scenario, from devices to a report, with live counts.

Starts the local stack, the streaming job and the bridge, runs the scenario's devices at an
accelerated clock, waits until silver holds every published message, runs the reports and
prints where to look further. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from stack import pipeline
from stack.env import REPO_ROOT
from stack.errors import StackError
from stack.flow import STREAM_TOPICS, MqttCounter, delta, kafka_offsets, silver_rows
from stack.layout import Layout

console = Console(stderr=True)
PARTS = {
    "devices": "devices.__main__",
    "bridge": "bridge.__main__",
    "stream": "spark.stream",
    "report": "spark.report",
}


def missing_parts() -> list[str]:
    return [name for name, mod in PARTS.items() if importlib.util.find_spec(mod) is None]


def counts_table(rows: Mapping[str, Mapping[str, int]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    for name in STREAM_TOPICS:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    for stage, counts in rows.items():
        values = [counts.get(n, 0) for n in STREAM_TOPICS]
        table.add_row(stage, *(f"{v:,}" for v in values), f"{sum(values):,}")
    return table


def manifest_totals(path: Path) -> dict[str, int]:
    """Messages published per stream, summed over the devices of a ``--manifest`` file."""
    totals = dict.fromkeys(STREAM_TOPICS, 0)
    for streams in json.loads(path.read_text())["devices"].values():
        for name, figures in streams.items():
            if name in totals:
                totals[name] += figures["published"]
    return totals


def watch(
    live: Live,
    title: str,
    probes: Mapping[str, Callable[[], dict[str, int]]],
    done: Callable[[], bool],
    timeout: float,
    interval: float = 2.0,
) -> dict[str, dict[str, int]]:
    """Refresh the counts table until ``done()`` or ``timeout``; return the last counts."""
    deadline = time.monotonic() + timeout
    while True:
        rows = {stage: probe() for stage, probe in probes.items()}
        live.update(counts_table(rows, f"{title}  ({time.strftime('%T')})"))
        if done() or time.monotonic() > deadline:
            return rows
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack demo", description=__doc__)
    parser.add_argument("--scenario", default="london-birmingham")
    parser.add_argument("--speed", type=float, default=120.0, help="simulated seconds per second")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=240.0,
        help="seconds to wait for silver to catch up after the devices finish",
    )
    args = parser.parse_args(argv)

    import stack

    started = time.monotonic()
    console.rule("[bold]CityFleet demo")
    env = stack.up(progress=True)
    gaps = missing_parts()
    if gaps:
        console.print(f"[yellow]not built yet: {', '.join(gaps)}; the demo stops at the stack.")
        return 0

    layout = Layout.from_env(env)
    run_dir = layout.root / "demo" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = run_dir / "manifest.json"
    child_env = {**env, "PYTHONUNBUFFERED": "1"}

    kafka_base = kafka_offsets(env["KAFKA_BOOTSTRAP_SERVERS"])
    silver_base = silver_rows(env)
    stream = pipeline.stream(run_dir, child_env, "--trigger", "5 seconds")
    bridge = pipeline.bridge(run_dir, child_env)
    devices = pipeline.devices(
        args.scenario,
        run_dir,
        child_env,
        "--speed",
        str(args.speed),
        "--start",
        "now",
        "--manifest",
        str(manifest),
        "--state-dir",
        str(layout.root / "devices"),
    )
    console.print(f"==> logs in {run_dir}")
    counter = MqttCounter(
        env, client_id=f"cityfleet-demo-{int(time.time())}", device_prefix=f"{args.scenario}-"
    )
    with counter as mqtt_seen:
        probes = {
            "published (MQTT)": mqtt_seen.snapshot,
            "in Kafka": lambda: delta(kafka_offsets(env["KAFKA_BOOTSTRAP_SERVERS"]), kafka_base),
            "in silver": lambda: delta(silver_rows(env), silver_base),
        }
        with pipeline.running(stream, bridge), Live(console=console, refresh_per_second=2) as live:
            console.print("==> streaming job and bridge started; starting the devices")
            devices.start()
            try:
                watch(
                    live,
                    f"{args.scenario}: devices running",
                    probes,
                    lambda: not devices.alive or not bridge.alive or not stream.alive,
                    3600,
                )
            finally:
                devices.stop()
            for part in (devices, bridge, stream):
                part.check()
            expected = manifest_totals(manifest)
            console.print(
                f"==> devices done: {sum(expected.values()):,} messages published; "
                "waiting for silver to catch up"
            )
            rows = watch(
                live,
                f"{args.scenario}: settling",
                probes,
                lambda: (
                    all(v >= expected[k] for k, v in probes["in silver"]().items())
                    or not stream.alive
                ),
                args.settle_timeout,
                interval=3.0,
            )
    rows = {"published (devices)": expected, **rows}
    console.print("==> running the reports")
    report = subprocess.run(
        [pipeline.PYTHON, "-m", "spark.report", "all", "--manifest", str(manifest)],
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(report.stdout)
    (run_dir / "report.log").write_text(report.stdout + report.stderr)
    if report.returncode != 0:
        raise StackError(f"the reports failed (exit {report.returncode}); see {run_dir}/report.log")
    verdict = next((ln for ln in report.stdout.splitlines() if ln.startswith("audit:")), "")
    summary(rows, verdict, env, run_dir, time.monotonic() - started)
    return 0 if "OK" in verdict else 1


def summary(
    rows: Mapping[str, Mapping[str, int]],
    verdict: str,
    env: Mapping[str, str],
    run_dir: Path,
    elapsed: float,
) -> None:
    out = Console()
    out.print(counts_table(rows, "messages per stream at each stage"))
    out.print(f"[bold]{verdict or 'audit: no verdict printed by the report'}")
    html = sorted((REPO_ROOT / "reports").glob("*.html"), key=lambda p: p.stat().st_mtime)
    bucket = env["S3_BUCKET"]
    out.print(f"""
HTML report   {html[-1] if html else "(none)"}
Parquet lake  s3a://{bucket}/silver/<topic>/  (bronze/, quarantine/, late/, gold/ beside it)
run logs      {run_dir}
took          {elapsed:.0f} s

Look further (load the credentials first: set -a; . ./.env; set +a):
  mosquitto_sub -h 127.0.0.1 -p 1883 -u "$MQTT_USERNAME" -P "$MQTT_PASSWORD" -t 'city/#' -v
  kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -t vehicle_data -C -o -5 -e -f '%k %s\\n'
  .venv/bin/python -m spark.sql "SELECT device_id, count(*) FROM smartcity.vehicle_data GROUP BY 1"
""")
