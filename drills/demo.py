"""``make demo``: the whole pipeline on one scenario, from devices to a report, with live counts.

Starts the local stack, the streaming job and the bridge, runs the scenario's devices at an
accelerated clock, waits until silver holds this run's every message (the audit core,
``spark.audit``, reading the Delta tables with delta-rs), stops them, runs the reports and
prints the audit's verdict (read from the JSON the report writes, ``--audit-json``) and where
to look further. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from cityconf.env import REPO_ROOT, load_env
from cityconf.errors import UserError
from cityconf.layout import Layout
from contract.manifest import Manifest, ManifestError
from drills import children
from drills.clock import DEVICES_TIMEOUT_S, SimulatedClock, fleet_lead_s
from drills.flow import STREAM_TOPICS, MqttCounter, delta, kafka_offsets
from drills.watch import Counts, Watcher, counts_table, covers
from spark import audit
from spark.reader import LakeReader
from spark.settings import DEFAULT_LATE_AFTER_S
from stack.process import Process, running

console = Console(stderr=True)
PARTS = {
    "devices": "devices.__main__",
    "bridge": "bridge.__main__",
    "stream": "spark.stream",
    "report": "spark.report",
}


def missing_parts() -> list[str]:
    return [name for name, mod in PARTS.items() if importlib.util.find_spec(mod) is None]


def read_manifest(path: Path) -> Manifest:
    try:
        return Manifest.read(path)
    except ManifestError as exc:
        raise UserError(f"the devices' manifest: {exc}") from None


@dataclass
class DemoRun:
    """One demo run: its folder and files, the children it starts and the lake it reads."""

    scenario: str
    speed: float
    env: dict[str, str]
    run_dir: Path
    state_dir: Path
    checkpoint: Path
    clock: SimulatedClock
    reader: LakeReader

    @classmethod
    def prepare(cls, args: argparse.Namespace, env: dict[str, str]) -> DemoRun:
        layout = Layout.from_env(env)
        run_dir = layout.root / "demo" / time.strftime("%Y%m%d-%H%M%S")
        run_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            scenario=args.scenario,
            speed=args.speed,
            env=env,
            run_dir=run_dir,
            state_dir=layout.devices,
            checkpoint=layout.stream_checkpoint,
            clock=SimulatedClock(layout.root / "demo" / "clock.json", args.scenario),
            reader=LakeReader.from_env(env),
        )

    @property
    def child_env(self) -> dict[str, str]:
        return {**self.env, "PYTHONUNBUFFERED": "1"}

    @property
    def manifest(self) -> Path:
        return self.run_dir / "manifest.json"

    @property
    def audit_json(self) -> Path:
        return self.run_dir / "audit.json"

    def processes(self) -> tuple[Process, Process, Process]:
        """The streaming job, the bridge and the devices, in start order (not started)."""
        start = self.clock.next_start()
        stream = children.stream(
            self.run_dir,
            self.child_env,
            "--trigger",
            "5 seconds",
            "--checkpoint",
            str(self.checkpoint),
            "--max-skew",
            f"{fleet_lead_s(self.clock, self.speed):.0f} seconds",
            # Ten simulated minutes pass in 2.5 s at 240x, inside one batch: late is judged in
            # the fleet's time, or nearly every row of the run would be recorded as late.
            "--late-after",
            f"{DEFAULT_LATE_AFTER_S * self.speed:.0f} seconds",
        )
        bridge = children.bridge(self.run_dir, self.child_env)
        devices = children.devices(
            self.scenario,
            self.run_dir,
            self.child_env,
            "--speed",
            str(self.speed),
            "--start",
            start,
            "--manifest",
            str(self.manifest),
            "--state-dir",
            str(self.state_dir),
        )
        return stream, bridge, devices


@dataclass
class Landed:
    """What the pipeline phase saw: the devices' manifest and the last live counts."""

    published: Manifest
    rows: dict[str, dict[str, int]]
    caught_up: bool


def settle(
    watcher: Watcher,
    reader: LakeReader,
    manifest: Manifest,
    target: Mapping[str, int],
    stream: Process,
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
    parser = argparse.ArgumentParser(prog="python -m drills demo", description=__doc__)
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
        # The children are stopped by now (stack.process.running); the servers this run
        # started go too, so an interrupted demo leaves nothing behind that was not there.
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
    except UserError as exc:
        console.print(f"[yellow]no live map: {exc}")
        return contextlib.nullcontext()
    console.print(f"==> live map: {page.url} (open it in a browser while the devices run)")
    return page


def run(args: argparse.Namespace) -> int:
    """The demo's steps: the stack, the pipeline until the lake caught up, the reports."""
    import stack

    started = time.monotonic()
    console.rule("[bold]CityFleet demo")
    env = stack.up(progress=True)
    gaps = missing_parts()
    if gaps:
        console.print(f"[yellow]not built yet: {', '.join(gaps)}; the demo stops at the stack.")
        return 0
    demo = DemoRun.prepare(args, env)
    landed = run_pipeline(demo, args.settle_timeout)
    if not landed.caught_up:
        console.print(
            f"[yellow]the lake did not catch up within {args.settle_timeout:.0f} s; the audit "
            f"will show what is missing (logs in {demo.run_dir})"
        )
    result = run_reports(demo)
    stages = {
        "published (devices)": landed.published.totals(),
        **landed.rows,
        "in silver (this run)": result.per_stream("received"),
    }
    summary(stages, result.verdict(), env, demo.run_dir, time.monotonic() - started)
    return 0 if result.ok else 1


def run_pipeline(demo: DemoRun, settle_timeout: float) -> Landed:
    """Stream, bridge and devices with the live table; then wait until silver holds the run."""
    bootstrap = demo.env["KAFKA_BOOTSTRAP_SERVERS"]
    kafka_base = kafka_offsets(bootstrap)
    silver_base = demo.reader.silver_rows()
    stream, bridge, devices = demo.processes()
    console.print(f"==> logs of this run in {demo.run_dir}")
    page = live_page(demo.scenario, demo.env)
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
        demo.env, client_id=f"cityfleet-demo-{int(time.time())}", device_prefix=f"{demo.scenario}-"
    )
    with (
        page,
        counter as mqtt_seen,
        running(stream, bridge),
        Live(console=console, refresh_per_second=2) as live,
    ):
        watcher = Watcher(
            live,
            {
                "published (MQTT)": mqtt_seen.snapshot,
                "in Kafka": lambda: delta(kafka_offsets(bootstrap), kafka_base),
                "in silver": lambda: delta(demo.reader.silver_rows(), silver_base),
            },
            status,
        )
        publish(watcher, demo.scenario, devices, bridge, stream)
        published = read_manifest(demo.manifest)
        expected = published.totals()
        demo.clock.ended(published)
        console.print(f"==> devices done: {sum(expected.values()):,} messages published")
        relayed = watcher.until(
            "bridge relaying the last messages",
            lambda rows: covers(rows["in Kafka"], expected) or not bridge.alive,
            60,
        )
        result = settle(watcher, demo.reader, published, expected, stream, settle_timeout)
        rows = watcher.rows
        console.print("==> stopping the bridge and the streaming job")
    for part in (bridge, stream):
        part.check()
    return Landed(published, rows, caught_up=relayed and result.missing == 0)


def publish(
    watcher: Watcher, scenario: str, devices: Process, bridge: Process, stream: Process
) -> None:
    """Run the devices to their end (or until a part of the pipeline died); raise if one did."""
    devices.start()
    try:
        watcher.until(
            f"{scenario}: devices publishing",
            lambda _rows: not (devices.alive and bridge.alive and stream.alive),
            DEVICES_TIMEOUT_S,
        )
    finally:
        devices.stop()
    for part in (devices, bridge, stream):
        part.check()


def run_reports(demo: DemoRun) -> audit.Audit:
    """``python -m spark.report all``; its audit, read back from the JSON it wrote.

    The verdict is the audit core's own result, the one the report printed and drew: read
    from ``--audit-json``, never parsed back out of the report's output. The report runs
    once, to its end, with its output shown: ``subprocess.run``, not a supervised child.
    """
    console.print("==> running the reports (Spark batch over the lake)")
    demo.audit_json.unlink(missing_ok=True)
    argv = ["-m", "spark.report", "all", "--manifest", str(demo.manifest)]
    report = subprocess.run(
        [children.PYTHON, *argv, "--audit-json", str(demo.audit_json)],
        env=demo.child_env,
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(report.stdout)
    (demo.run_dir / "report.log").write_text(report.stdout + report.stderr)
    if report.returncode != 0 or not demo.audit_json.is_file():
        raise UserError(
            f"the reports failed (exit {report.returncode}); see {demo.run_dir}/report.log"
        )
    return audit.Audit.read(demo.audit_json)


def summary(
    rows: Mapping[str, Counts],
    verdict: str,
    env: Mapping[str, str],
    run_dir: Path,
    elapsed: float,
) -> None:
    out = Console()
    out.print(counts_table(rows, "messages per stream at each stage"))
    out.print(f"[bold]{verdict}")
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
