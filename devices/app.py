"""One run of a scenario: state, sink, fleet, clock, progress, summary and manifest."""

from __future__ import annotations

import logging
import signal
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cityconf.env import load_env
from cityconf.keys import value
from cityconf.layout import Layout
from cityconf.mqtt import login
from contract.manifest import Manifest
from devices import runner
from devices.emit import JsonLinesSink
from devices.fleet import Fleet, build
from devices.loader import Loaded
from devices.snapshots import Uploader
from devices.state import SeqState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    speed: float | None = None
    fast: bool = False
    broker: str | None = None
    dry_run: bool = False
    manifest: Path | None = None
    shard: tuple[int, int] | None = None
    state_dir: Path | None = None
    no_state: bool = False
    start: datetime | None = None
    quiet: bool = False


def _state_dir(loaded: Loaded, options: Options, env: dict[str, str]) -> Path | None:
    if options.no_state:
        return None
    if options.state_dir is not None:
        return options.state_dir
    if options.dry_run:
        return None
    shard = f"-shard{options.shard[0]}of{options.shard[1]}" if options.shard else ""
    return Layout.from_env(env).devices / f"{loaded.scenario.prefix}{shard}"


def _speed(loaded: Loaded, options: Options) -> float | None:
    if options.fast:
        return None
    if options.speed is not None:
        return options.speed
    clock = loaded.scenario.clock
    return clock.speed if clock.mode == "realtime" else None


def write_manifest(path: Path, state: SeqState, extra: dict) -> None:
    Manifest.from_counters(state.manifest(), extra.get("stats", {})).write(path)


def run_scenario(loaded: Loaded, options: Options) -> int:
    env = load_env()
    state = SeqState.open(_state_dir(loaded, options, env))
    stopping = {"flag": False}

    def stop(_signum: int, _frame: object) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    console = Console(stderr=True)
    speed = _speed(loaded, options)
    if options.dry_run:
        out = sys.stdout.buffer
        sink = JsonLinesSink(out.write)
        uploader = Uploader(value(env, "S3_BUCKET"))
        fleet = build(
            loaded, sink, state, start=options.start, shard=options.shard, uploader=uploader
        )
        result = runner.run(
            fleet.env, runner.NoNetwork(), fleet.until, fleet.done, speed,
            should_stop=lambda: stopping["flag"],
        )  # fmt: skip
        fleet.hub.flush_late()
        out.flush()
        state.save(clean=True)
        if options.manifest:
            write_manifest(options.manifest, state, {"stats": _stats(fleet, None, result)})
        return 0
    return _live(loaded, options, env, state, speed, console, stopping)


def _live(loaded, options, env, state, speed, console: Console, stopping) -> int:
    from devices.mqtt import BrokerError, FleetMqttSettings, MqttNetwork

    try:
        settings = FleetMqttSettings.from_env(env, options.broker)
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    net = MqttNetwork(settings, loaded.scenario, seed=loaded.scenario.seed)
    net.reboot_scale = 1 / speed if speed else 0.01
    needs_s3 = any(c.snapshots == "s3" for c in loaded.scenario.cameras)
    uploader = Uploader.from_env(env) if needs_s3 else None
    fleet = build(loaded, net, state, start=options.start, shard=options.shard, uploader=uploader)
    try:
        net.add(list(fleet.streams), _logins(env, net.connections(list(fleet.streams))))
        net.start()
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    last = {"t": time.monotonic(), "sent": 0}
    progress = None if options.quiet else console.status("")
    if progress:
        progress.start()

    def tick(sim_now: float) -> None:
        if progress is None:
            return
        now = time.monotonic()
        rate = (net.sent - last["sent"]) / max(1e-6, now - last["t"])
        last.update(t=now, sent=net.sent)
        progress.update(
            f"[bold]{loaded.scenario.name}[/] sim {fleet.hub.clock.format(sim_now)}  "
            f"online {net.online:,}/{len(net.links):,}  {rate:,.0f} msg/s  "
            f"sent {net.sent:,}  buffered {net.buffered:,}"
        )

    try:
        result = runner.run(
            fleet.env, net, fleet.until, fleet.done, speed, tick, lambda: stopping["flag"]
        )
    finally:
        fleet.hub.flush_late()
        if progress:
            progress.update("flushing: waiting for every PUBACK")
        unacked = net.close(timeout=60)
        if progress:
            progress.stop()
        if uploader:
            uploader.close()
        state.save(clean=True)
    stats = _stats(fleet, net, result)
    stats["unacked_at_exit"] = unacked
    if options.manifest:
        write_manifest(options.manifest, state, {"stats": stats})
    if not options.quiet:
        _summary(console, fleet, state, stats)
    return 0 if unacked == 0 else 1


def _logins(env: dict[str, str], connections: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """Each connection's own MQTT login, provisioned on the broker `.env` names (creating what
    it lacks, as `python -m stack device-credentials` does): a device's, or a gateway's allowed
    to publish only for the devices it carries."""
    from cityconf.errors import UserError
    from devices.mqtt import BrokerError
    from stack.mosquitto import device_logins, gateway_logins

    if env.get("MQTT_DEVICE_LOGIN") == "gateway":  # docker-compose: a broker we cannot provision
        shared = login(env, "gateway")
        if not all(shared):
            raise BrokerError("MQTT_DEVICE_LOGIN=gateway needs MQTT_GATEWAY_USERNAME/PASSWORD")
        return {client_id: (shared[0] or "", shared[1] or "") for client_id in connections}
    try:
        if all(carried == [cid] for cid, carried in connections.items()):
            passwords = device_logins(env, list(connections))
        else:
            passwords = gateway_logins(env, connections)
    except UserError as exc:
        raise BrokerError(f"provisioning the devices' MQTT accounts: {exc}") from None
    return {client_id: (client_id, password) for client_id, password in passwords.items()}


def _stats(fleet: Fleet, net, result: runner.RunResult) -> dict:
    s = fleet.hub.stats
    out = {
        "sim_seconds": round(result.sim_seconds, 3),
        "wall_seconds": round(result.wall_seconds, 3),
        "max_lag_s": round(result.max_lag_s, 3),
        "duplicates_sent": s.duplicates,
        "network_dropped": s.network_dropped,
        "late": s.late,
        "reboots": s.reboots,
    }
    if net is not None:
        out.update(
            sent=net.sent, buffer_dropped=net.dropped, reconnects=net.reconnects,
            rejected=net.rejected, too_large=net.too_large,
        )  # fmt: skip
    return out


def _summary(console: Console, fleet: Fleet, state: SeqState, stats: dict) -> None:
    table = Table(title=f"{fleet.hub.scenario}: published this run")
    for col in ("stream", "devices", "messages", "last seq (max)"):
        table.add_column(col, justify="right" if col != "stream" else "left")
    per: dict[str, list[int]] = {}
    for streams in state.manifest().values():
        for stream, f in streams.items():
            row = per.setdefault(stream, [0, 0, 0])
            row[0] += 1
            row[1] += f["published"]
            row[2] = max(row[2], f["last_seq"])
    for stream, (n, msgs, last) in sorted(per.items()):
        table.add_row(stream, f"{n:,}", f"{msgs:,}", f"{last:,}")
    console.print(table)
    console.print(
        ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in stats.items())
    )
