"""``make demo``: the whole pipeline on one scenario, from devices to a report, with live counts.

Starts the local stack, the streaming job and the bridge, runs the scenario's devices at an
accelerated clock, waits until silver holds this run's every message (the audit core,
``spark.audit``, reading the Delta tables with delta-rs), stops them, runs the reports and
prints the audit's verdict and where to look further. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from contract.manifest import Manifest, ManifestError
from spark import audit
from spark.reader import LakeReader
from spark.settings import DEFAULT_LATE_AFTER_S
from stack import pipeline
from stack.env import REPO_ROOT, load_env
from stack.errors import StackError
from stack.flow import STREAM_TOPICS, MqttCounter, delta, kafka_offsets
from stack.layout import Layout

console = Console(stderr=True)
PARTS = {
    "devices": "devices.__main__",
    "bridge": "bridge.__main__",
    "stream": "spark.stream",
    "report": "spark.report",
}
Counts = Mapping[str, int]


def missing_parts() -> list[str]:
    return [name for name, mod in PARTS.items() if importlib.util.find_spec(mod) is None]


def counts_table(
    rows: Mapping[str, Counts], title: str, rates: Mapping[str, float] | None = None
) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    for name in STREAM_TOPICS:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    if rates is not None:
        table.add_column("msg/s", justify="right")
    for stage, counts in rows.items():
        values = [counts.get(n, 0) for n in STREAM_TOPICS]
        cells = [stage, *(f"{v:,}" for v in values), f"{sum(values):,}"]
        if rates is not None:
            cells.append(f"{rates.get(stage, 0.0):,.0f}")
        table.add_row(*cells)
    return table


DEVICES_TIMEOUT_S = 3600.0
"""The longest the demo lets its devices publish (wall-clock seconds)."""


def fleet_lead_s(clock: SimulatedClock, speed: float) -> float:
    """How far the fleet's event times can run ahead of Kafka's timestamps in this run.

    The streaming job quarantines a row dated more than ``--max-skew`` after its Kafka
    timestamp (a device with a bad clock). The demo's fleet is ahead on purpose: its clock
    starts where the last run ended and runs ``speed`` times faster than the wall clock, so
    its own streaming job allows that much and no more.
    """
    ahead = (clock.start - datetime.now(UTC)).total_seconds()
    return max(0.0, ahead) + speed * DEVICES_TIMEOUT_S + 300.0


def read_manifest(path: Path) -> Manifest:
    try:
        return Manifest.read(path)
    except ManifestError as exc:
        raise StackError(f"the devices' manifest: {exc}") from None


def covers(have: Counts, want: Counts) -> bool:
    return all(have.get(k, 0) >= v for k, v in want.items())


class Watcher:
    """Polls the stage probes and redraws one live table with counts and rates."""

    def __init__(
        self,
        live: Live,
        probes: Mapping[str, Callable[[], dict[str, int]]],
        status: Callable[[], str],
    ) -> None:
        self.live = live
        self.probes = probes
        self.status = status
        self.began = time.monotonic()
        self.rows: dict[str, dict[str, int]] = {}
        self._last: tuple[float, dict[str, int]] | None = None

    def poll(self, phase: str) -> dict[str, dict[str, int]]:
        now = time.monotonic()
        self.rows = {stage: probe() for stage, probe in self.probes.items()}
        totals = {stage: sum(c.values()) for stage, c in self.rows.items()}
        rates: dict[str, float] = {}
        if self._last is not None and now > self._last[0]:
            span = now - self._last[0]
            rates = {s: (totals[s] - self._last[1].get(s, 0)) / span for s in totals}
        self._last = (now, totals)
        title = f"{phase}  ·  {now - self.began:.0f} s  ·  {self.status()}"
        self.live.update(counts_table(self.rows, title, rates))
        return self.rows

    def until(
        self, phase: str, done: Callable[[dict[str, dict[str, int]]], bool], timeout: float
    ) -> bool:
        """Redraw every 2 s until ``done(rows)``; False when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while True:
            if done(self.poll(phase)):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(2.0)


class SimulatedClock:
    """Where the next run's simulated time starts: now, or after the previous run ended.

    An accelerated clock runs ahead of the wall clock; a second run starting at "now" again
    would be hours behind the first run's events, and the streaming job would record every
    row of it as late (they still land in silver). So each run starts where the last ended.
    """

    def __init__(self, path: Path, scenario: str) -> None:
        self.path = path
        self.scenario = scenario
        self.start = datetime.now(UTC).replace(microsecond=0)

    def _saved(self) -> dict[str, str]:
        try:
            return json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def next_start(self) -> str:
        ended = self._saved().get(self.scenario)
        if ended:
            self.start = max(self.start, datetime.fromisoformat(ended) + timedelta(minutes=1))
        return self.start.isoformat().replace("+00:00", "Z")

    def ended(self, manifest: Manifest) -> None:
        seconds = float(manifest.stats.get("sim_seconds", 0.0))
        saved = self._saved()
        saved[self.scenario] = (self.start + timedelta(seconds=seconds)).isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(saved, indent=2) + "\n")


def settle(
    watcher: Watcher,
    reader: LakeReader,
    manifest: Manifest,
    target: Mapping[str, int],
    stream: pipeline.Component,
    timeout: float,
) -> audit.Audit:
    """Wait until silver holds every message of this run; return the audit that says so.

    Silver's row counts (the Delta log's statistics, cheap to poll) must first reach the
    rows it held before the run plus what the devices published; the audit then checks
    this run's every ``(device_id, seq)``, and is repeated while something is still missing
    (a backlog of an earlier run may have filled the counts first) until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    watcher.until(
        "Spark landing the last batches",
        lambda rows: covers(rows["in silver"], target) or not stream.alive,
        timeout,
    )
    while True:
        result = audit.run(reader, manifest)
        if result.missing == 0 or not stream.alive or time.monotonic() > deadline:
            return result
        watcher.poll("Spark landing the last batches (audit: rows still missing)")
        time.sleep(5.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack demo", description=__doc__)
    parser.add_argument("--scenario", default="london-birmingham")
    parser.add_argument(
        "--speed", type=float, default=240.0, help="simulated seconds per second (default 240)"
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the lake to catch up after the devices finish",
    )
    args = parser.parse_args(argv)

    from stack.core import Services

    already = {server.name for server in Services.build().servers() if server.pid}
    try:
        return run(args)
    except KeyboardInterrupt:
        # The children are stopped by now (pipeline.running); the servers this run started
        # go too, so an interrupted demo leaves nothing behind that was not there before.
        started = [s for s in Services.build().servers() if s.pid and s.name not in already]
        for server in started:
            server.stop()
        names = ", ".join(s.name for s in started)
        console.print(
            "[yellow]interrupted: stopped the devices, the bridge and the streaming job"
            + (f", and {names}, which this demo had started" if names else "")
        )
        return 130


def live_page(scenario: str, env: Mapping[str, str]) -> contextlib.AbstractContextManager[object]:
    """The live map, served while the devices run; without it (say, the port is taken) a note."""
    from live.server import serve

    try:  # LIVE_PORT and LIVE_TILE_URL come from .env or the environment
        page = serve(scenario, {**load_env(), **env})
    except StackError as exc:
        console.print(f"[yellow]no live map: {exc}")
        return contextlib.nullcontext()
    console.print(f"==> live map: {page.url} (open it in a browser while the devices run)")
    return page


def run(args: argparse.Namespace) -> int:
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
    checkpoint = layout.root / "checkpoints" / "stream"
    child_env = {**env, "PYTHONUNBUFFERED": "1"}
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    reader = LakeReader.from_env(env)

    kafka_base = kafka_offsets(bootstrap)
    silver_base = reader.silver_rows()
    clock = SimulatedClock(layout.root / "demo" / "clock.json", args.scenario)
    start = clock.next_start()
    stream = pipeline.stream(
        run_dir,
        child_env,
        "--trigger",
        "5 seconds",
        "--checkpoint",
        str(checkpoint),
        "--max-skew",
        f"{fleet_lead_s(clock, args.speed):.0f} seconds",
        # Ten simulated minutes pass in 2.5 s at 240x, inside one batch: late is judged in the
        # fleet's time, or nearly every row of the run would be recorded as late.
        "--late-after",
        f"{DEFAULT_LATE_AFTER_S * args.speed:.0f} seconds",
    )
    bridge = pipeline.bridge(run_dir, child_env)
    devices = pipeline.devices(
        args.scenario,
        run_dir,
        child_env,
        "--speed",
        str(args.speed),
        "--start",
        start,
        "--manifest",
        str(manifest),
        "--state-dir",
        str(layout.root / "devices"),
    )
    console.print(f"==> logs of this run in {run_dir}")
    page = live_page(args.scenario, env)
    console.print(
        "==> starting the streaming job (a Spark JVM: its first batch takes a while), "
        "the bridge and the devices"
    )

    def status() -> str:
        landed = any(watcher.rows.get("in silver", {}).get(n, 0) > 0 for n in STREAM_TOPICS)
        spark = "landing" if landed else "starting" if stream.alive else "stopped"
        cars = "running" if devices.alive else "done"
        return f"devices {cars}, bridge {'up' if bridge.alive else 'down'}, Spark {spark}"

    counter = MqttCounter(
        env, client_id=f"cityfleet-demo-{int(time.time())}", device_prefix=f"{args.scenario}-"
    )
    with (
        page,
        counter as mqtt_seen,
        pipeline.running(stream, bridge),
        Live(console=console, refresh_per_second=2) as live,
    ):
        watcher = Watcher(
            live,
            {
                "published (MQTT)": mqtt_seen.snapshot,
                "in Kafka": lambda: delta(kafka_offsets(bootstrap), kafka_base),
                "in silver": lambda: delta(reader.silver_rows(), silver_base),
            },
            status,
        )
        devices.start()
        try:
            watcher.until(
                f"{args.scenario}: devices publishing",
                lambda _rows: not (devices.alive and bridge.alive and stream.alive),
                DEVICES_TIMEOUT_S,
            )
        finally:
            devices.stop()
        for part in (devices, bridge, stream):
            part.check()
        published = read_manifest(manifest)
        expected = published.totals()
        clock.ended(published)
        console.print(f"==> devices done: {sum(expected.values()):,} messages published")
        relayed = watcher.until(
            "bridge relaying the last messages",
            lambda rows: covers(rows["in Kafka"], expected) or not bridge.alive,
            60,
        )
        result = settle(watcher, reader, published, expected, stream, args.settle_timeout)
        landed = result.missing == 0
        rows = watcher.rows
        console.print("==> stopping the bridge and the streaming job")
    for part in (bridge, stream):
        part.check()
    if not (relayed and landed):
        console.print(
            f"[yellow]the lake did not catch up within {args.settle_timeout:.0f} s; the audit "
            f"will show what is missing (logs in {run_dir})"
        )
    console.print("==> running the reports (Spark batch over the lake)")
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
    # The verdict is the audit core's own result, the one the report printed: never parsed
    # back out of the report's output. Read again after the stream stopped, so it is final.
    result = audit.run(reader, published)
    stages = {
        "published (devices)": expected,
        **rows,
        "in silver (this run)": result.per_stream("received"),
    }
    summary(stages, result.verdict(), env, run_dir, time.monotonic() - started)
    return 0 if result.ok else 1


def summary(
    rows: Mapping[str, Counts],
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
    port = env.get("MQTT_PORT", "1883")
    out.print(f"""
HTML report   {html[-1] if html else "(none)"}
Delta lake    s3a://{bucket}/silver/<topic>/  (bronze/, quarantine/, late/, dead_letters/, gold/)
run logs      {run_dir}
took          {elapsed:.0f} s

Look further (load the credentials first: set -a; . ./.env; set +a):
  mosquitto_sub -h 127.0.0.1 -p {port} -u "$MQTT_USERNAME" -P "$MQTT_PASSWORD" -t 'city/#' -v
  kcat -b "$KAFKA_BOOTSTRAP_SERVERS" -t vehicle_data -C -o -5 -e -f '%k %s\\n'
  .venv/bin/python -m spark.sql "SELECT device_id, count(*) FROM smartcity.vehicle_data GROUP BY 1"
  .venv/bin/python -m spark.sql "DESCRIBE HISTORY smartcity.vehicle_data"
""")
