"""Faults on the cluster topology: brokers and workers die under load, silver stays exact.

``make chaos TOPOLOGY=cluster`` (``python -m drills cluster``) runs a scenario through
the cluster topology's own servers (three Kafka brokers, the Spark standalone cluster), into a
fresh lake root, and injects in turn: ``kill -9`` of the Kafka broker that leads the most
partitions, that broker's restart, and ``kill -9`` of a Spark worker mid-batch (restarted after
a pause). With replication factor 3 and ``min.insync.replicas=2`` a dead broker costs a leader
election, not a message; a dead worker costs its tasks, which the driver runs again elsewhere.
At the end the audit core checks every published ``(device_id, stream, seq)`` is in silver
exactly once, and the table gives each fault's losses, duplicates and recovery time.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from cityconf.errors import UserError
from cityconf.layout import Layout
from contract import DEAD_LETTER_TOPIC
from contract.manifest import Manifest
from drills import children
from drills.faults import (
    Fault,
    FaultAudit,
    charge,
    conclude,
    inject_all,
    wait_for_growth,
    wait_for_silver,
)
from drills.flow import (
    STREAM_TOPICS,
    count_or_down,
    end_offsets,
    kafka_total,
    lake_root,
    silver_total,
)
from drills.harness import end_session, short_session
from spark.reader import LakeReader
from stack.cluster import ClusterBroker, KafkaCluster, SparkCluster, topology
from stack.kafka import admin
from stack.process import Process, running

console = Console(stderr=True)
RECOVERY_TIMEOUT_S = 600.0  # a Spark batch took minutes on a busy two-core machine


def leading_broker(cluster: KafkaCluster) -> ClusterBroker:
    """The broker that leads the most partitions now: killing it moves the most leaders."""
    topics = admin(cluster.bootstrap).list_topics(timeout=10).topics
    leaders = Counter(p.leader for t in topics.values() for p in t.partitions.values())
    by_id = {b.node_id: b for b in cluster.brokers}
    node_id = max(by_id, key=lambda n: leaders.get(n, 0))
    return by_id[node_id]


@dataclass
class ClusterDrill:
    """One run: its folder, the pipeline's env, the cluster's servers and a fresh lake root."""

    env: dict[str, str]
    run_dir: Path
    kafka: KafkaCluster
    spark: SparkCluster
    root_uri: str
    """The drill's own lake root, fresh for each run."""
    scenario: str
    speed: float
    duration_s: int
    reader: LakeReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = LakeReader.from_env(self.env, self.root_uri)

    @property
    def manifest(self) -> Path:
        return self.run_dir / "manifest.json"

    def devices(self) -> Process:
        # The fleet's clock runs `speed` times faster than the wall clock; started that many
        # hours back, its event times stay behind the Kafka timestamps for the whole hour,
        # where the stream's clock guard (rows ahead of Kafka are quarantined) lets them pass.
        start = datetime.now(UTC) - timedelta(seconds=self.duration_s)
        return children.devices(
            self.scenario, self.run_dir, self.env, "--speed", str(self.speed),
            "--start", start.isoformat(timespec="seconds"), "--duration", str(self.duration_s),
            "--id-prefix", f"cl{self.run_dir.name[-6:]}-",
            "--state-dir", str(self.run_dir / "device-state"), "--manifest", str(self.manifest),
        )  # fmt: skip

    def stream(self) -> Process:
        # From where the topics end now (they are the topology's, holding other runs'
        # messages), so the devices need not wait for the query to start: a cold streaming
        # job takes a minute or two to its first rows on two cores, and they publish meanwhile.
        bootstrap = self.env["KAFKA_BOOTSTRAP_SERVERS"]
        starting = json.dumps(end_offsets(bootstrap, [*STREAM_TOPICS.values(), DEAD_LETTER_TOPIC]))
        return children.stream(
            self.run_dir, self.env, "--trigger", "2 seconds", "--starting-offsets", starting,
            "--output-root", self.root_uri, "--checkpoint", str(self.run_dir / "checkpoint"),
        )  # fmt: skip

    def kafka_total(self) -> int:
        return count_or_down(lambda: kafka_total(self.env["KAFKA_BOOTSTRAP_SERVERS"]))

    def silver_total(self) -> int:
        return count_or_down(lambda: silver_total(self.reader))


def faults(drill: ClusterDrill, worker_pause_s: float) -> list[Fault]:
    victim: list[ClusterBroker] = []

    def kill_leader() -> None:
        broker = leading_broker(drill.kafka)
        victim.append(broker)
        console.print(f"    killing {broker.name} (pid {broker.pid})")
        broker.kill()

    def restart_broker() -> None:
        victim[-1].start()

    def kill_worker() -> None:
        worker = drill.spark.workers[0]
        worker.kill()
        time.sleep(worker_pause_s)
        worker.start()

    return [
        Fault("Kafka broker kill -9 (the most leaders)", kill_leader, drill.kafka_total),
        Fault("Kafka broker restart", restart_broker, drill.kafka_total),
        Fault("Spark worker kill -9 mid-batch", kill_worker, drill.silver_total),
    ]


def run_drill(
    drill: ClusterDrill, interval: float, settle_timeout: float
) -> tuple[list[Fault], FaultAudit]:
    stream = drill.stream()
    client_id = f"cl-{drill.run_dir.name}"
    bridge = children.bridge(
        drill.run_dir, drill.env, "--client-id", client_id, *short_session(drill.run_dir)
    )
    devices = drill.devices()
    plan = faults(drill, worker_pause_s=5.0)

    def first_rows() -> int:
        stream.check()  # a job that could not start fails the drill now, not at the timeout
        return drill.silver_total()

    try:
        with running(stream, bridge):
            with running(devices):  # stopped (SIGTERM) whatever happens
                # Faults only once rows flow end to end (a first batch on a busy machine takes
                # minutes)
                if wait_for_growth(first_rows, timeout=RECOVERY_TIMEOUT_S) is None:
                    raise UserError(
                        f"no row reached silver in {RECOVERY_TIMEOUT_S:.0f} s; "
                        f"see {stream.log_file}"
                    )
                inject_all(plan, interval, lambda: (devices, bridge, stream), RECOVERY_TIMEOUT_S)
            # the devices flushed on SIGTERM and wrote their manifest
            devices.check()
            expected = Manifest.read(drill.manifest)
            wait_for_silver(drill.reader, expected, settle_timeout)
    finally:
        # The drill runs on the stack's own Mosquitto, which would keep this bridge's session
        # for a day, queueing every later run's traffic for a bridge that never returns.
        end_session(drill.env, client_id)
    return plan, charge(drill.reader, expected, plan)


def require_cluster(env: Mapping[str, str]) -> tuple[KafkaCluster, SparkCluster]:
    from stack.core import Services

    services = Services.build(env)
    if topology(env) != "cluster" or services.spark is None:
        raise UserError("the cluster drill needs the cluster topology: make up TOPOLOGY=cluster")
    assert isinstance(services.kafka, KafkaCluster)
    unhealthy = [m.name for m in (*services.kafka.members, *services.spark.members)
                 if not m.healthy()]  # fmt: skip
    if unhealthy:
        raise UserError(f"{', '.join(unhealthy)} not healthy; run make up TOPOLOGY=cluster")
    return services.kafka, services.spark


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills cluster", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a shortened drill (~5 minutes)")
    parser.add_argument("--scenario", default="smoke", help="default: smoke")
    parser.add_argument("--interval", type=float, default=None, help="seconds between faults")
    args = parser.parse_args(argv)

    import stack
    from cityconf.env import load_env

    if env is None:
        stack.up(progress=True)
    # Not up()'s values alone: the servers are rebuilt from the same settings `make up` used
    base_env = dict(env) if env is not None else load_env()
    kafka, spark = require_cluster(base_env)
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    run_dir = Layout.from_env(base_env).root / "chaos" / f"cluster-{run_id}"
    run_dir.mkdir(parents=True)
    interval = args.interval or (8.0 if args.quick else 30.0)
    # The devices run until stopped after the last fault (the duration is only a bound).
    speed = 10.0
    duration_s = int(speed * 3600)
    root_uri = lake_root(base_env, f"chaos/cluster-{run_id}")
    drill = ClusterDrill({**base_env, "PYTHONUNBUFFERED": "1"}, run_dir, kafka, spark, root_uri,
                         args.scenario, speed, duration_s)  # fmt: skip
    console.rule(f"[bold]CityFleet cluster fault drill {run_id}")
    plan, result = run_drill(drill, interval, settle_timeout=RECOVERY_TIMEOUT_S)
    return conclude("cluster chaos", root_uri, plan, result, run_dir)
