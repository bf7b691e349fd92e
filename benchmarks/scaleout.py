"""Scale-out on the cluster topology: each figure beside its single-process one, same run.

* the bridge draining one backlog from 1, 2 and 3 processes in a ``$share`` group, acks after
  the three brokers (``benchmarks.bridge.measure``);
* the rush-hour fleet on the fast clock from 1, 2 and 4 shard processes
  (``benchmarks.devices.shard_run``);
* Kafka → silver (``benchmarks.spark.kafka_to_silver``) on the Spark standalone cluster (two
  workers of one core) beside ``local[2]``: the same message count, one child process per
  master, since a process holds one SparkSession.

Every row's note also gives the CPU each part spent per message (``benchmarks.cpu``) and what
that makes of a machine with more cores: the per-core rate × N, assuming every part scales
linearly per process, capped where a part is one process (Mosquitto). On two cores the curves
flatten: the processes being added share the same two cores with Mosquitto, the brokers and
each other, so a second or third process takes CPU from the first rather than adding its own.

Needs ``make up TOPOLOGY=cluster``. ``python -m benchmarks.scaleout [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from benchmarks import bridge, devices
from benchmarks.cpu import CpuMeter, bound, breakdown, extrapolate, net_of_idle
from benchmarks.reference import mosquitto_raw_rate
from benchmarks.results import Row, report, row
from cityconf.env import load_env
from cityconf.errors import BAD_INPUT, UserError, guarded
from stack.cluster import topology

CORES_AHEAD = 8
"""The machine the notes extrapolate to."""
BRIDGE_PROCESSES = (1, 2, 3)
SHARD_PROCESSES = (1, 2, 4)
LOCAL_MASTER = "local[2]"
PARTS = ("bridge", "devices", "spark")
RAW_REF = "mosquitto_pub→mosquitto_sub QoS 1, same run"
ONE_PROCESS = ("mosquitto",)  # Mosquitto runs one thread: one core at most, however many cores
IDLE_PROBE_S = 5.0
Servers = Mapping[str, list[int | None]]


def require_cluster_topology(env: Mapping[str, str]) -> None:
    """One clear line, exit code 2, when the stack the env names is not the cluster topology."""
    if topology(env) != "cluster":
        raise UserError(
            "the scale-out benchmark runs on the cluster topology: "
            "run `make up TOPOLOGY=cluster` first",
            exit_code=BAD_INPUT,
        )


def cpu_note(spent: Mapping[str, float], messages: int) -> str:
    """CPU per message of each part, the ceiling they set on this machine, and on more cores."""
    cores = os.cpu_count() or 1
    ahead = extrapolate(spent, messages, CORES_AHEAD, ONE_PROCESS)
    return (
        f"CPU per message: {breakdown(spent, messages)}; "
        f"this machine's {cores} cores allow ≤ {bound(spent, messages, cores):,.0f} msg/s; "
        f"{ahead.note()}"
    )


def _servers(env: Mapping[str, str]) -> dict[str, list[int | None]]:
    """The cluster topology's server processes by part (their pids from the stack's own
    records), for ``CpuMeter``."""
    from drills.cluster import require_cluster
    from stack.core import Services

    kafka, spark = require_cluster(env)
    services = Services.build(env)
    return {
        "mosquitto": [services.mosquitto.pid],
        "kafka": [b.pid for b in kafka.members],
        "s3": [services.s3.pid],
        "spark-workers": [w.pid for w in spark.workers],
    }


def _meter(servers: Servers, names: Sequence[str]) -> CpuMeter:
    meter = CpuMeter()
    for name in names:
        meter.add(name, servers[name])
    return meter


def idle_rates(servers: Servers) -> dict[str, float]:
    """CPU seconds a second each server part spends with no traffic, so that a small run's
    figures are not the three brokers' background work spread over its few messages."""
    meter = _meter(servers, list(servers))
    meter.start()
    time.sleep(IDLE_PROBE_S)
    meter.sample()
    return {name: s / meter.elapsed for name, s in meter.seconds().items()}


def scaled_row(name: str, processes: int, rate: float, one: float, raw: float, note: str) -> Row:
    """The one-process row beside Mosquitto's raw rate (what one process is measured against
    elsewhere); every other beside the one-process figure of the same run."""
    if processes == 1:
        return row(name, rate, "msg/s", RAW_REF, raw, note=note)
    return row(name, rate, "msg/s", "1 process, same run", one,
               note=f"{rate / one:.2f}x 1 process; {note}")  # fmt: skip


def bridge_rows(
    env: dict[str, str], servers: Servers, idle: Mapping[str, float], n: int
) -> list[Row]:
    raw = mosquitto_raw_rate(env, n, qos=1)
    rows: list[Row] = []
    one = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for processes in BRIDGE_PROCESSES:
            meter = _meter(servers, ("mosquitto", "kafka"))
            drain = bridge.measure(env, Path(tmp), n, processes, meter)
            spent = {"bridge": drain.cpu_s, **net_of_idle(meter.seconds(), idle, meter.elapsed)}
            one = one or drain.rate
            name = (
                "scale-out: bridge, 1 process, 3 brokers"
                if processes == 1
                else f"scale-out: bridge, {processes} processes, $share, 3 brokers"
            )
            note = f"{n:,} messages; {cpu_note(spent, n)}"
            rows.append(scaled_row(name, processes, drain.rate, one, raw, note))
    return rows


def devices_rows(
    env: dict[str, str], servers: Servers, idle: Mapping[str, float], duration_s: int
) -> list[Row]:
    raw = mosquitto_raw_rate(env, 50_000, qos=1)
    rows: list[Row] = []
    one = 0.0
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        rush = devices.scenario_copy(tmp, "rush-hour", duration_s=duration_s)
        for shards in SHARD_PROCESSES:
            meter = _meter(servers, ("mosquitto",))
            meter.start()
            run = devices.shard_run(env, rush, tmp, shards)
            meter.sample()
            spent = {"devices": run.cpu_s, **net_of_idle(meter.seconds(), idle, meter.elapsed)}
            one = one or run.rate
            name = f"scale-out: devices, {shards} shard process{'es' if shards > 1 else ''}"
            note = (
                f"rush hour, fast clock, {run.messages:,} messages, whole run "
                f"{run.wall_s:.1f} s; the CPU includes each process's start and its devices' "
                f"connects; "
                f"{cpu_note(spent, run.messages)}"
            )
            rows.append(scaled_row(name, shards, run.rate, one, raw, note))
    return rows


def _spark_child(
    env: Mapping[str, str], master: str, n: int, out: Path, meter: CpuMeter
) -> dict[str, float]:
    """``kafka_to_silver`` on ``master`` in a process of its own, its CPU sampled while it runs
    (executors exit with the job, and an exited process can no longer be asked)."""
    log = out.with_suffix(".log")
    with log.open("ab") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.scaleout", "--spark-child", str(out),
             "--messages", str(n)],
            env={**os.environ, **env, "SPARK_MASTER": master},
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        meter.add("spark", [child.pid])
        meter.start()
        while child.poll() is None:
            meter.sample()
            time.sleep(1)
    finally:
        if child.poll() is None:  # interrupted: the job must not outlive the benchmark
            child.kill()
            child.wait()
    if child.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"Kafka → silver on {master} failed:\n{tail}")
    return json.loads(out.read_text())


def spark_rows(
    env: dict[str, str], servers: Servers, idle: Mapping[str, float], n: int
) -> list[Row]:
    results: dict[str, dict[str, float]] = {}
    notes: dict[str, str] = {}
    masters = {"local": LOCAL_MASTER, "cluster": env["SPARK_MASTER"]}
    with tempfile.TemporaryDirectory() as t:
        for label, master in masters.items():
            parts = ("kafka", "s3", "spark-workers") if label == "cluster" else ("kafka", "s3")
            meter = _meter(servers, parts)
            results[label] = _spark_child(env, master, n, Path(t) / f"{label}.json", meter)
            spent = net_of_idle(meter.seconds(), idle, meter.elapsed)
            spent["spark"] = spent.get("spark", 0.0) + spent.pop("spark-workers", 0.0)
            notes[label] = cpu_note(spent, n)
    local, cluster = results["local"], results["cluster"]
    return [
        row(
            "scale-out: spark Kafka → silver, standalone 2 workers",
            cluster["rate"],
            "rows/s",
            f"{LOCAL_MASTER}, same run",
            local["rate"],
            note=f"{n:,} msgs each; longest batch {cluster['longest']:.1f} s "
            f"({LOCAL_MASTER}: {local['longest']:.1f} s), warm-up {cluster['warm_up']:.1f} s "
            f"({local['warm_up']:.1f} s); Spark's CPU is the whole job process's (session "
            f"start, producing the messages, warm-up batch): "
            f"cluster: {notes['cluster']}; {LOCAL_MASTER}: {notes['local']}",
        )
    ]


def spark_child(out: Path, n: int) -> int:
    """The child's side: one session on ``SPARK_MASTER``, one ``kafka_to_silver``, to a file."""
    from benchmarks.spark import kafka_to_silver
    from spark.session import build_session

    env = load_env()
    spark = build_session("cityfleet-bench-scaleout", env, extra_conf={"spark.ui.enabled": "false"})
    with tempfile.TemporaryDirectory(prefix="cityfleet-bench-scaleout-") as tmp:
        # Six batches of n / 6 messages, the first three warming up.
        per_batch = n // 6
        rate, longest, _, warm_up, _ = kafka_to_silver(
            spark, env, per_batch, Path(tmp), warm_up_rows=3 * per_batch, measured_batches=3
        )
    spark.stop()
    out.write_text(json.dumps({"rate": rate, "longest": longest, "warm_up": warm_up}))
    return 0


def run(
    env: dict[str, str],
    quick: bool,
    only: Sequence[str] = PARTS,
    messages: int | None = None,
    duration_s: int | None = None,
) -> list[Row]:
    require_cluster_topology(env)
    servers = _servers(env)
    idle = idle_rates(servers)
    stages: dict[str, Callable[[], list[Row]]] = {
        "bridge": lambda: bridge_rows(
            env, servers, idle, messages or (40_000 if quick else 200_000)
        ),
        "devices": lambda: devices_rows(env, servers, idle, duration_s or (600 if quick else 2700)),
        "spark": lambda: spark_rows(
            env, servers, idle, messages or (100_000 if quick else 500_000)
        ),
    }
    rows: list[Row] = []
    for part in only:
        print(f"==> scale-out: {part}", file=sys.stderr)
        rows += stages[part]()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--quick", action="store_true", help="fewer messages (about 10 minutes)")
    p.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="these parts")
    p.add_argument("--messages", type=int, help="messages for the bridge and Spark runs")
    p.add_argument("--duration", type=int, help="simulated seconds of the devices' rush hour")
    p.add_argument("--spark-child", type=Path, help=argparse.SUPPRESS)  # the Spark child's side
    args = p.parse_args(argv)
    if args.spark_child:
        return spark_child(args.spark_child, args.messages)

    def body() -> int:
        rows = run(load_env(), args.quick, args.only, args.messages, args.duration)
        report(rows, "scaleout-quick" if args.quick else "scaleout")
        return 0

    return guarded(body)


if __name__ == "__main__":
    sys.exit(main())
