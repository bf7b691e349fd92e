"""Device fleet benchmarks: the fast London-Birmingham trip, msg/s from one process and from
shards, 10,000 devices on their own connections at 1 msg/s in real time, and how fast 10,000
devices are provisioned and connect with their own credentials (``--only connect``), and 24
simulated hours of London-Birmingham with background traffic in a dry run (``--only traffic``,
no broker needed).

Every figure is read from the devices' own ``--manifest`` (published, wall time, lag), with
Mosquitto's raw ``mosquitto_pub`` → ``mosquitto_sub`` rate measured in the same run as reference.
Run: ``python -m benchmarks.devices [--quick] [--only connect|traffic|realtime]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from benchmarks.cpu import children_seconds
from benchmarks.reference import mosquitto_raw_rate
from benchmarks.results import Row, report, row
from cityconf.env import REPO_ROOT, load_env

SCENARIOS = REPO_ROOT / "scenarios"
QUIET = {"cameras": [], "weather": None, "incidents": {"enabled": False}}


def scenario_copy(tmp: Path, base: str, **changes: Any) -> Path:
    """``scenarios/<base>.yaml`` with ``changes``, written to ``tmp`` (route files absolute)."""
    data = yaml.safe_load((SCENARIOS / f"{base}.yaml").read_text())
    for r in data["routes"]:
        r["file"] = str(SCENARIOS / r["file"])
    data.update(changes)
    path = tmp / f"{base}-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(env: dict[str, str], scenario: Path, tmp: Path, *extra: str) -> tuple[dict, float]:
    manifest = tmp / f"manifest-{uuid.uuid4().hex[:6]}.json"
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, "-m", "devices", "--scenario", str(scenario), "-q", "--no-state",
           "--id-prefix", prefix, "--manifest", str(manifest), *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(
        cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"devices failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(manifest.read_text()), wall


def _published(manifest: dict) -> int:
    return sum(s["published"] for d in manifest["devices"].values() for s in d.values())


class Shards(NamedTuple):
    """One fast-clock run of a scenario split over shard processes."""

    messages: int
    loop_s: float
    """The slowest shard's simulate+publish loop (its manifest's ``wall_seconds``)."""
    wall_s: float
    """From the first process's start to the last one's exit."""
    cpu_s: float
    """CPU seconds of every shard process, start-up included."""

    @property
    def rate(self) -> float:
        return self.messages / self.loop_s


def shard_run(env: dict[str, str], scenario: Path, tmp: Path, shards: int) -> Shards:
    """The scenario on the fast clock from ``shards`` processes at once, each ``--shard i/n``
    of the fleet (one process runs it whole, as a fleet without ``--shard`` does)."""
    procs, manifests = [], []
    before = children_seconds()
    start = time.perf_counter()
    for i in range(shards):
        m = tmp / f"shard-{uuid.uuid4().hex[:6]}-{i}.json"
        manifests.append(m)
        split = ["--shard", f"{i}/{shards}"] if shards > 1 else []
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "devices", "--scenario", str(scenario), "-q", "--no-state",
             "--fast", *split, "--manifest", str(m),
             "--id-prefix", f"bench{uuid.uuid4().hex[:6]}"],
            env={**os.environ, **env},
        ))  # fmt: skip
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"devices shards failed with exit codes {codes}")
    cpu = children_seconds() - before
    done = [json.loads(m.read_text()) for m in manifests]
    loop_s = max(d["stats"]["wall_seconds"] for d in done)
    return Shards(sum(_published(d) for d in done), loop_s, wall, cpu)


def run(env: dict[str, str], quick: bool) -> list[Row]:
    rows: list[Row] = []
    raw_q1 = mosquitto_raw_rate(env, 50_000 if quick else 200_000, 1)
    raw_q0 = mosquitto_raw_rate(env, 50_000 if quick else 200_000, 0)
    rows.append(
        row("mosquitto raw rate, QoS 1 (mosquitto_pub -l → mosquitto_sub)", raw_q1, "msg/s")
    )
    rows.append(
        row("mosquitto raw rate, QoS 0 (mosquitto_pub -l → mosquitto_sub)", raw_q0, "msg/s")
    )
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        one_car = {
            **QUIET,
            "vehicles": [{"route": "m1-m6", "count": 1, "intervals_s": {"vehicle": 1, "gps": 1}}],
        }
        trip = scenario_copy(tmp, "london-birmingham", **one_car)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "devices", "--scenario", str(trip), "--fast", "--dry-run"],
            stdout=subprocess.DEVNULL, check=True,
        )  # fmt: skip
        rows.append(row(
            "London-Birmingham trip, 1 vehicle, simulation only (--dry-run to /dev/null)",
            time.perf_counter() - start, "s", "issue goal (with MQTT)", 5.0,
        ))  # fmt: skip
        manifest, wall = _run(env, trip, tmp, "--fast")
        n = _published(manifest)
        rows.append(row(
            "London-Birmingham trip, 1 vehicle, fast clock, QoS 1 to Mosquitto (whole process)",
            wall, "s", "issue goal", 5.0,
            note=f"{n:,} messages; simulate+publish loop {manifest['stats']['wall_seconds']:.2f} s",
        ))  # fmt: skip

        duration = 600 if quick else 2700
        rush = scenario_copy(tmp, "rush-hour", duration_s=duration)
        one = shard_run(env, rush, tmp, 1)
        rows.append(row(
            "rush hour (1,200 vehicles, 1 process, fast clock) msg/s", one.rate, "msg/s",
            "mosquitto raw QoS 1", raw_q1, note=f"{one.messages:,} messages, mixed QoS 0/1",
        ))  # fmt: skip
        shards = shard_run(env, rush, tmp, 2)
        rows.append(row(
            "rush hour, 2 shard processes, msg/s", shards.rate, "msg/s",
            "mosquitto raw QoS 1", raw_q1,
            note=f"{shards.messages:,} messages; whole run {shards.wall_s:.1f} s",
        ))  # fmt: skip

        rows += realtime_rows(env, tmp, quick)
    rows += connect_rows(env)
    rows += traffic_rows()
    return rows


def realtime_rows(env: dict[str, str], tmp: Path, quick: bool) -> list[Row]:
    """10,000 devices, each on its own connection, at 1 msg/s on the real-time clock."""
    rows: list[Row] = []
    devices = 10_000
    seconds = 15 if quick else 60
    fleet = {
        **QUIET,
        "duration_s": seconds,
        "mqtt": {"default_qos": 1, "keepalive_s": 120},
        "vehicles": [{
            "route": "m40", "count": devices, "depart": {"every_s": 0},
            "intervals_s": {"vehicle": 1, "gps": None}, "gps_dropout_prob": 0,
        }],
    }  # fmt: skip
    scenario = scenario_copy(tmp, "rush-hour", **fleet)
    manifest, wall = _run(env, scenario, tmp, "--speed", "1")
    stats = manifest["stats"]
    n = _published(manifest)
    rows.append(row(
        f"{devices:,} devices, own connection each, 1 msg/s real time: delivered rate",
        n / stats["wall_seconds"], "msg/s", "clock demands", devices * 1.0,
        note=f"max lag behind the clock {stats['max_lag_s']:.2f} s; "
        f"connect+flush {wall - stats['wall_seconds']:.1f} s; "
        f"unacked {stats['unacked_at_exit']}",
    ))  # fmt: skip
    rows.append(row(f"{devices:,} devices real time: max lag behind the wall clock",
                    stats["max_lag_s"], "s"))  # fmt: skip
    return rows


def _connect_seconds(env: dict[str, str], logins: dict[str, tuple[str, str]]) -> float:
    """Seconds from the first CONNECT to the last CONNACK: one connection per device, the
    fleet's own code path (``MqttNetwork.start``), client id = device id."""
    from devices.mqtt import FleetMqttSettings as MqttSettings
    from devices.mqtt import MqttNetwork
    from devices.scenario import Scenario

    scenario = Scenario.model_validate({
        "name": "bench-connect", "duration_s": 1, "routes": [{"id": "r", "file": "x"}],
        "mqtt": {"keepalive_s": 120},
    })  # fmt: skip
    net = MqttNetwork(MqttSettings.from_env(env), scenario, seed=1)
    net.add(list(logins), logins)
    start = time.perf_counter()
    net.start(timeout=600)
    took = time.perf_counter() - start
    net.close(timeout=60)
    return took


def connect_rows(env: dict[str, str], devices: int = 10_000) -> list[Row]:
    """Provisioning and connecting ``devices`` new devices with their own credentials, beside
    the same devices logging in through one shared account (how the old ``fleet`` login
    worked: no per-device password, any client id), in the same run."""
    from stack.mosquitto import device_logins

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    ids = [f"{prefix}-dev-{i:05d}" for i in range(devices)]
    shared = (env["MQTT_GATEWAY_USERNAME"], env["MQTT_GATEWAY_PASSWORD"])
    before = [_connect_seconds(env, {d: shared for d in ids})]
    start = time.perf_counter()
    passwords = device_logins(env, ids)
    provision_s = time.perf_counter() - start
    start = time.perf_counter()
    device_logins(env, ids)  # what every later fleet start does: check, nothing to add
    recheck_s = time.perf_counter() - start
    after = _connect_seconds(env, {d: (d, pw) for d, pw in passwords.items()})
    before.append(_connect_seconds(env, {d: shared for d in ids}))  # before and after: fairer
    n = f"{devices:,}"
    return [
        row(f"devices: provision {n} new device accounts (password file + broker reload)",
            provision_s, "s", note=f"{devices / provision_s:,.0f} accounts/s; "
            f"checking them again (every later fleet start) {recheck_s:.2f} s"),
        row(f"devices: connect {n} with own credentials", devices / after, "conn/s",
            f"connect {n} through one shared account, same run (the old fleet login)",
            devices / min(before), note=f"{after:.1f} s; shared account "
            f"{' s, '.join(f'{b:.1f}' for b in before)} s (run before and after; the faster)"),
    ]  # fmt: skip


def _dry_run_day(scenario: Path, tmp: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, messages) of one ``--dry-run --fast`` to /dev/null."""
    manifest = tmp / f"manifest-{uuid.uuid4().hex[:6]}.json"
    cpu0 = children_seconds()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "devices", "--scenario", str(scenario), "--fast", "--dry-run",
         "--no-state", "--manifest", str(manifest)],
        stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    wall = time.perf_counter() - start
    cpu = children_seconds() - cpu0
    return wall, cpu, _published(json.loads(manifest.read_text()))


def traffic_rows() -> list[Row]:
    """24 simulated hours of london-birmingham with background traffic (the cell transmission
    model) in ``--dry-run``, beside the same day without background demand, same run. No
    broker needed."""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        day = {"duration_s": 86_400}
        ref = scenario_copy(tmp, "london-birmingham", **day, traffic={"background": False})
        ref_wall, ref_cpu, ref_n = _dry_run_day(ref, tmp)
        wall, cpu, n = _dry_run_day(scenario_copy(tmp, "london-birmingham", **day), tmp)
    return [
        row("devices: london-birmingham 24 h with traffic, dry run", wall, "s",
            "same 24 h without background traffic, same run", ref_wall,
            note=f"goal < 30 s; CPU {cpu:.1f} s (reference {ref_cpu:.1f} s); "
            f"{n:,} messages (reference {ref_n:,})"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.devices", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument(
        "--only", choices=["connect", "traffic", "realtime"], help="run one piece only"
    )
    args = parser.parse_args(argv)
    if args.only == "traffic":
        report(traffic_rows(), "devices-traffic")
        return 0
    env = load_env()
    if args.only == "realtime":
        with tempfile.TemporaryDirectory() as t:
            report(realtime_rows(env, Path(t), args.quick), "devices-realtime")
        return 0
    rows = connect_rows(env) if args.only == "connect" else run(env, args.quick)
    report(rows, "devices-connect" if args.only == "connect" else "devices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
