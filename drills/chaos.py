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

from cityconf.layout import Layout
from contract.manifest import Manifest
from drills import children
from drills.clock import SimulatedClock
from drills.faults import Fault, FaultAudit, charge, conclude, inject_all, wait_for_silver
from drills.flow import count_or_down, kafka_total, lake_root, silver_total
from drills.servers import Servers, private_servers
from spark.reader import LakeReader
from stack.process import Process, running

console = Console(stderr=True)
RECOVERY_TIMEOUT_S = 300.0
"""A fault the pipeline has not recovered from after this long fails the drill. Generous: on a
busy 2-core machine one Spark batch can take a minute or two."""


@dataclass
class Drill:
    env: dict[str, str]
    run_dir: Path
    servers: Servers
    root_uri: str
    """The drill's own lake root, fresh for each run."""
    speed: float
    scenario: str
    s3_outage_s: float
    manifests: list[Path] = field(default_factory=list)
    clock: SimulatedClock = field(init=False)
    reader: LakeReader = field(init=False)

    def __post_init__(self) -> None:
        self.clock = SimulatedClock(self.run_dir / "clock.json", self.scenario)
        self.reader = LakeReader.from_env(self.env, self.root_uri)

    def devices(self) -> Process:
        manifest = self.run_dir / f"manifest-{len(self.manifests) + 1}.json"
        self.manifests.append(manifest)
        return children.devices(
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
        return count_or_down(lambda: kafka_total(self.env["KAFKA_BOOTSTRAP_SERVERS"]))

    def silver_total(self) -> int:
        return count_or_down(lambda: silver_total(self.reader))


def run_drill(
    drill: Drill, interval: float, settle_timeout: float
) -> tuple[list[Fault], FaultAudit]:
    env, run_dir = drill.env, drill.run_dir
    stream_args = (
        "--trigger",
        "2 seconds",
        "--output-root",
        drill.root_uri,
        "--checkpoint",
        str(run_dir / "checkpoint"),
        # The simulated clock runs `speed` times faster than Kafka's: by design far ahead of
        # it, so the clock guard allows what two hours of drill put between them.
        "--max-skew",
        f"{drill.speed * 2:.0f} hours",
    )
    stream = children.stream(run_dir, env, *stream_args)
    bridge = children.bridge(run_dir, env, "--client-id", f"chaos-bridge-{run_dir.name}")
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

    def kill_and_restart(component: Process) -> Callable[[], None]:
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
    # The devices start with the job, not once its query has started: it reads the drill's
    # own Kafka from the earliest offsets, so nothing published meanwhile is skipped.
    with running(stream, bridge):
        devices.start()
        try:
            inject_all(
                faults, interval, lambda: (state["devices"], bridge, stream), RECOVERY_TIMEOUT_S
            )
        finally:  # the devices running now, a reboot's second run included
            state["devices"].stop()
        state["devices"].check()
        drill.devices_ended()
        expected = Manifest.read_all(drill.manifests)
        wait_for_silver(drill.reader, expected, settle_timeout)
    return faults, charge(drill.reader, expected, faults)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills chaos", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a shortened drill (40x clock, faults 5 s apart)"
    )
    parser.add_argument("--scenario", default=None, help="default: london-birmingham")
    parser.add_argument("--interval", type=float, default=None, help="seconds between faults")
    parser.add_argument(
        "--s3-outage",
        type=float,
        default=None,
        help="seconds the S3 server stays down (default 60; 20 with --quick)",
    )
    args = parser.parse_args(argv)

    import stack

    base_env = dict(env) if env is not None else stack.up(progress=True)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    run_dir = Layout.from_env(base_env).root / "chaos" / run_id
    run_dir.mkdir(parents=True)
    scenario = args.scenario or "london-birmingham"
    interval = args.interval or (5.0 if args.quick else 25.0)
    with private_servers(run_dir / "servers", base_env) as servers:
        # The children get the caller's environment too: PATH, and the settings `.env` does
        # not hold (SPARK_UI_PORT, CITYFLEET_STATE_DIR); `.env`'s values already honour it.
        env = {**os.environ, **base_env, **servers.env, "PYTHONUNBUFFERED": "1"}
        drill = Drill(
            env,
            run_dir,
            servers,
            lake_root(env, f"chaos/{run_id}"),
            speed=40.0 if args.quick else 30.0,
            scenario=scenario,
            s3_outage_s=args.s3_outage or (20.0 if args.quick else 60.0),
        )
        console.rule(f"[bold]CityFleet fault drill {run_id}")
        faults, result = run_drill(drill, interval, settle_timeout=600)
    return conclude("chaos", drill.root_uri, faults, result, run_dir)
