"""``make chaos``: kill and restart every component under load, then prove nothing was lost.

The drill runs on its own Mosquitto, Kafka and S3 server (throwaway instances beside the shared
stack, so killing them disturbs nobody), with a fresh lake root, checkpoint and device state.
While the scenario runs it injects, in turn: a device reboot, ``kill -9`` of the bridge, a
Mosquitto restart (persistence on), ``kill -9`` of Mosquitto, a Kafka restart, the S3 server
down for a minute and ``kill -9`` of the streaming job. At the end every published
``(device_id, stream, seq)`` must be in silver exactly once; the drill prints, per fault, what
was lost (must be zero), what was duplicated before silver (and removed), and how long the
pipeline took to recover once the fault was over.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from contract.manifest import Manifest
from stack import pipeline
from stack.demo import SimulatedClock
from stack.drill import Lake, Servers, audit, private_servers
from stack.errors import StackError
from stack.flow import kafka_offsets

console = Console(stderr=True)
RECOVERY_TIMEOUT_S = 300.0
"""A fault the pipeline has not recovered from after this long fails the drill. Generous: on a
busy 2-core machine one Spark batch can take a minute or two."""


@dataclass
class Fault:
    name: str
    inject: Callable[[], None]
    progress: Callable[[], int]
    """A count that grows while the pipeline flows; recovery is when it grows again."""
    injected_at: float = 0.0
    recovery_s: float | None = None
    lost: int = 0
    duplicated: int = 0


@dataclass
class Drill:
    env: dict[str, str]
    run_dir: Path
    servers: Servers
    lake: Lake
    speed: float
    scenario: str
    s3_outage_s: float
    manifests: list[Path] = field(default_factory=list)
    clock: SimulatedClock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = SimulatedClock(self.run_dir / "clock.json", self.scenario)

    def devices(self) -> pipeline.Component:
        manifest = self.run_dir / f"manifest-{len(self.manifests) + 1}.json"
        self.manifests.append(manifest)
        return pipeline.devices(
            self.scenario,
            self.run_dir,
            self.env,
            "--speed",
            str(self.speed),
            # A rebooted fleet goes on from where its clock stopped, as the demo's second run
            # does: restarting at "now" would put its rows minutes behind the watermark.
            "--start",
            self.clock.next_start(),
            "--state-dir",
            str(self.run_dir / "device-state"),
            "--manifest",
            str(manifest),
        )

    def devices_ended(self) -> None:
        """Note where the last devices run's simulated clock stopped (its manifest says)."""
        self.clock.ended(Manifest.read(self.manifests[-1]))

    def kafka_total(self) -> int:
        try:
            return sum(kafka_offsets(self.env["KAFKA_BOOTSTRAP_SERVERS"]).values())
        except Exception:  # the broker may be the thing that is down
            return -1

    def silver_total(self) -> int:
        try:
            return self.lake.silver_total()
        except Exception:  # the S3 server may be the thing that is down
            return -1


def wait_for_growth(probe: Callable[[], int], timeout: float) -> float | None:
    """Seconds until ``probe()`` exceeds its value at the start, or None after ``timeout``."""
    start = time.monotonic()
    base = probe()
    while time.monotonic() - start < timeout:
        time.sleep(0.5)
        now = probe()
        if now > base >= 0 or (base < 0 <= now and now > 0):
            return time.monotonic() - start
    return None


def last_seqs(manifests: list[Path]) -> dict[tuple[str, str], int]:
    """The highest seq each device published per data stream, over all its runs."""
    merged = Manifest.read_all(manifests)
    return {(e.device_id, e.stream): e.last_seq for e in merged.expected()}


def run_drill(drill: Drill, interval: float, settle_timeout: float) -> list[Fault]:
    env, run_dir = drill.env, drill.run_dir
    stream_args = (
        "--trigger",
        "2 seconds",
        "--output-root",
        drill.lake.root_uri,
        "--checkpoint",
        str(run_dir / "checkpoint"),
        # The simulated clock runs `speed` times faster than Kafka's: by design far ahead of
        # it, so the clock guard allows what two hours of drill put between them.
        "--max-skew",
        f"{drill.speed * 2:.0f} hours",
    )
    stream = pipeline.stream(run_dir, env, *stream_args)
    bridge = pipeline.bridge(run_dir, env, "--client-id", f"chaos-bridge-{run_dir.name}")
    devices = drill.devices()
    state = {"devices": devices}

    def reboot_devices() -> None:
        state["devices"].stop()
        drill.devices_ended()
        time.sleep(2)
        state["devices"] = drill.devices().start()

    def restart(server_name: str, pause: float, *, crash: bool = False) -> Callable[[], None]:
        """Stop a server (SIGTERM, or ``kill -9`` for a crash), wait ``pause`` s, start it."""

        def inject() -> None:
            server = getattr(drill.servers, server_name)
            server.kill() if crash else server.stop()
            time.sleep(pause)
            server.start()

        return inject

    def kill_and_restart(component: pipeline.Component) -> Callable[[], None]:
        def inject() -> None:
            component.kill()
            time.sleep(2)
            component.start()

        return inject

    faults = [
        Fault("device reboot (SIGTERM, restart)", reboot_devices, drill.kafka_total),
        Fault("bridge kill -9", kill_and_restart(bridge), drill.kafka_total),
        Fault("Mosquitto restart", restart("mosquitto", 3), drill.kafka_total),
        Fault("Mosquitto kill -9", restart("mosquitto", 3, crash=True), drill.kafka_total),
        Fault("Kafka restart", restart("kafka", 8), drill.kafka_total),
        # Recovery counts from the server's return: silver grows again once the job's retries
        # reach it (a batch in flight during the outage fails, the query retries it).
        Fault(
            f"S3 server down {drill.s3_outage_s:.0f} s",
            restart("s3", drill.s3_outage_s),
            drill.silver_total,
        ),
        Fault("streaming job kill -9", kill_and_restart(stream), drill.silver_total),
    ]
    with pipeline.running(stream, bridge):
        drill.lake.wait_for_stream(run_dir / "checkpoint", timeout=600, stream=stream)
        devices.start()
        for fault in faults:
            time.sleep(interval)
            for part in (state["devices"], bridge, stream):
                part.check()
            inject(fault, RECOVERY_TIMEOUT_S)
        time.sleep(interval)
        state["devices"].stop()
        state["devices"].check()
        drill.devices_ended()
        expected = Manifest.read_all(drill.manifests)
        total = sum(e.count for e in expected.expected())
        console.print(f"==> devices stopped; {total:,} messages to find in silver")
        drill.lake.wait_for_rows(total, timeout=settle_timeout)
    return charge(drill.lake, expected, faults)


def inject(fault: Fault, recovery_timeout: float) -> None:
    """Inject one fault and time how long until its progress probe grows again."""
    console.print(f"==> fault: {fault.name}")
    fault.injected_at = time.time()
    fault.inject()
    fault.recovery_s = wait_for_growth(fault.progress, timeout=recovery_timeout)
    console.print(f"    flowing again after {fault.recovery_s or float('nan'):.1f} s")


def charge(lake: Lake, expected: Manifest, faults: list[Fault]) -> list[Fault]:
    """Audit silver; charge each lost row and extra copy to the fault injected before it."""
    result = audit(lake.reader, expected, [(f.name, f.injected_at) for f in faults])
    for fault in faults:
        fault.lost = result.lost_by_fault.get(fault.name, 0)
        fault.duplicated = result.duplicates_by_fault.get(fault.name, 0)
    lake.missing_total = result.missing
    lake.silver_duplicates = result.silver_duplicates
    return faults


def table(faults: list[Fault], lake: Lake) -> Table:
    t = Table(title=f"fault drill: {lake.root_uri}", title_justify="left")
    for col in ("fault", "lost", "duplicated before silver (removed)", "recovery s"):
        t.add_column(col, justify="left" if col == "fault" else "right")
    for f in faults:
        rec = "did not recover" if f.recovery_s is None else f"{f.recovery_s:.1f}"
        t.add_row(f.name, str(f.lost), str(f.duplicated), rec)
    return t


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack chaos", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a shortened drill (40x clock, faults 10 s apart)"
    )
    parser.add_argument("--scenario", default=None, help="default: london-birmingham")
    parser.add_argument("--interval", type=float, default=None, help="seconds between faults")
    parser.add_argument(
        "--s3-outage", type=float, default=60.0, help="seconds the S3 server stays down"
    )
    args = parser.parse_args(argv)

    import stack

    base_env = dict(env) if env is not None else stack.up(progress=True)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    from stack.layout import Layout

    run_dir = Layout.from_env(base_env).root / "chaos" / run_id
    run_dir.mkdir(parents=True)
    scenario = args.scenario or "london-birmingham"
    interval = args.interval or (10.0 if args.quick else 25.0)
    with private_servers(run_dir / "servers", base_env) as servers:
        # The children get the caller's environment too: PATH, and the settings `.env` does
        # not hold (SPARK_UI_PORT, CITYFLEET_STATE_DIR); `.env`'s values already honour it.
        env = {**os.environ, **base_env, **servers.env, "PYTHONUNBUFFERED": "1"}
        lake = Lake(env, f"chaos/{run_id}")
        drill = Drill(
            env,
            run_dir,
            servers,
            lake,
            speed=40.0 if args.quick else 30.0,
            scenario=scenario,
            s3_outage_s=args.s3_outage,
        )
        console.rule(f"[bold]CityFleet fault drill {run_id}")
        faults = run_drill(drill, interval, settle_timeout=600)
    Console().print(table(faults, lake))
    ok = lake.missing_total == 0 and lake.silver_duplicates == 0
    verdict = (
        f"chaos: {'OK' if ok else 'FAILED'}: {lake.missing_total} missing, "
        f"{lake.silver_duplicates} duplicated in silver, "
        f"{sum(f.duplicated for f in faults)} duplicates removed before silver"
    )
    Console().print(f"[bold]{verdict}")
    if any(f.recovery_s is None for f in faults):
        raise StackError(f"a component did not recover; logs in {run_dir}")
    return 0 if ok else 1
