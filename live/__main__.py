"""``python -m live``: serve the live map of a scenario, optionally run its devices, or shoot it."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from cityconf.env import load_env
from cityconf.errors import guarded
from cityconf.keys import default
from drills import children
from live.server import serve
from stack.process import Process, running


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m live",
        description="Serve CityFleet's live map on 127.0.0.1: a page that subscribes to city/# "
        "over MQTT on WebSockets (the read-only viewer account from .env) and draws the "
        "scenario's routes, vehicles, cameras, weather stations and incidents as messages "
        "arrive. Ctrl-C stops it.",
        epilog="examples:\n"
        "  python -m live --scenario london-birmingham --run-devices\n"
        "  python -m live --scenario smoke --port 0\n"
        "  python -m live --scenario london-birmingham --run-devices --speed 240 "
        "--screenshot docs/live-map.png --after 40\n"
        f"settings: LIVE_PORT ({default('LIVE_PORT')}), LIVE_TILE_URL and LIVE_TILE_ATTRIBUTION "
        "(optional background tiles), MQTT_WS_URL and MQTT_VIEWER_USERNAME/PASSWORD "
        "(written by make up)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", default="london-birmingham", help="YAML path or a name")
    p.add_argument("--id-prefix", help="device-id prefix to show (default: the scenario's)")
    p.add_argument(
        "--port", type=int, help=f"page port (default LIVE_PORT or {default('LIVE_PORT')}; 0: any)"
    )
    p.add_argument(
        "--run-devices",
        action="store_true",
        help="also run the scenario's devices (python -m devices --start now)",
    )
    p.add_argument("--speed", type=float, help="with --run-devices: the devices' clock speed")
    p.add_argument(
        "--screenshot", type=Path, help="open the page in headless Chromium, save a PNG, exit"
    )
    p.add_argument(
        "--after", type=float, default=20.0, help="seconds to watch before the screenshot"
    )
    return p


def devices_child(args: argparse.Namespace, env: dict[str, str], log_dir: Path) -> Process:
    extra = ["--start", "now"]
    if args.speed is not None:
        extra += ["--speed", str(args.speed)]
    if args.id_prefix:
        extra += ["--id-prefix", args.id_prefix]
    return children.devices(args.scenario, log_dir, {**env, "PYTHONUNBUFFERED": "1"}, *extra)


def shoot(url: str, path: Path, after: float) -> int:
    from live.browser import chromium, watch

    with chromium() as context:
        watched = watch(context)
        watched.page.goto(url)
        watched.page.wait_for_timeout(after * 1000)
        watched.screenshot(path)
        online, messages = watched.number("data-devices-online"), watched.number("data-messages")
    size = path.stat().st_size
    print(
        f"screenshot {path} ({size / 1024:.0f} KB): {online} devices online, {messages} messages",
        flush=True,
    )
    for error in watched.errors:
        print(f"error in the page: {error}", file=sys.stderr)
    return 1 if watched.errors else 0


def run(args: argparse.Namespace) -> int:
    env = load_env()
    with serve(args.scenario, env, args.id_prefix, args.port) as server:
        print(f"live map of {args.scenario}: {server.url}", flush=True)
        log_dir = server.settings.layout.root / "live" / time.strftime("%Y%m%d-%H%M%S")
        child = devices_child(args, env, log_dir) if args.run_devices else None
        with running(*([child] if child else [])):
            if child:
                print(f"devices running (log {child.log_file})", flush=True)
            if args.screenshot:
                code = shoot(server.url, args.screenshot, args.after)
                if child:
                    child.check()  # a screenshot of a fleet that crashed shows nothing true
                return code
            while True:
                if child and not child.alive:
                    child.check()
                    print("devices done; the page stays up until Ctrl-C", flush=True)
                    child = None
                time.sleep(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return guarded(lambda: run(args), interrupted="stopped")


if __name__ == "__main__":
    sys.exit(main())
