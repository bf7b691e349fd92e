"""`python -m stack up|down|status`: the local servers from the command line."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import time
from collections.abc import Sequence

from cityconf.errors import guarded

DELEGATED = {
    "provision": "stack.provision",
    "install": "stack.provision",
}
MOVED = {"demo": "python -m drills demo", "chaos": "python -m drills chaos"}
"""Commands that left ``stack/`` (it runs the servers only): where they went."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Install, start, stop and probe the local Mosquitto, Kafka and S3 servers. "
        "State lives in .cityfleet/ (CITYFLEET_STATE_DIR); ports come from MQTT_PORT, "
        "MQTT_TLS_PORT, KAFKA_PORT, KAFKA_CONTROLLER_PORT, S3_PORT.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="install what is missing, start what is not running, write .env")
    up.add_argument("--quiet", action="store_true", help="no progress lines")
    sub.add_parser("down", help="stop the servers by pid (data is kept)")
    sub.add_parser("status", help="probe each server; exit 1 if any is unhealthy")
    creds = sub.add_parser(
        "device-credentials",
        help="print a device's MQTT login, creating it if needed (the running broker accepts "
        "it at once)",
        description="Print the MQTT username and password of each DEVICE_ID (the username is "
        "also the client id the device must connect with, and it may publish only to "
        "city/<stream>/<DEVICE_ID>). Creates the account if needed and makes the running broker "
        "accept it; the same device id always gets the same password.",
    )
    creds.add_argument("device_ids", nargs="+", metavar="DEVICE_ID")
    for name in DELEGATED:
        sub.add_parser(name, help=f"see `python -m stack {name} --help`", add_help=False)
    return parser


def _print_status() -> int:
    from stack.core import status

    rows = status()
    header = ("service", "endpoint", "healthy", "pid", "log file")
    table = [header] + [
        (
            r.service,
            r.endpoint,
            "yes" if r.healthy else "NO",
            str(r.pid or "-"),
            str(r.log_file or "-"),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    unhealthy = [r.service for r in rows if not r.healthy]
    if unhealthy:
        print(f"unhealthy: {', '.join(unhealthy)}; start the stack with `make up`", file=sys.stderr)
        return 1
    return 0


def _device_credentials(device_ids: list[str]) -> int:
    from cityconf.env import load_env
    from stack.mosquitto import device_logins

    for device_id, password in device_logins(load_env(), device_ids).items():
        print(f"username {device_id}\npassword {password}\nclient id {device_id}")
    return 0


def _delegate(name: str, argv: Sequence[str]) -> int:
    module = DELEGATED[name]
    if importlib.util.find_spec(module) is None:
        print(f"`{name}` is not built yet ({module} does not exist)", file=sys.stderr)
        return 2
    args = [name, *argv] if name == "install" else list(argv)
    return int(importlib.import_module(module).main(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if argv and argv[0] in MOVED:
        print(f"`python -m stack {argv[0]}` is now `{MOVED[argv[0]]}`", file=sys.stderr)
        return 2
    return guarded(lambda: _command(argv))


def _command(argv: list[str]) -> int:
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "up":
        from stack.core import up

        up(progress=not args.quiet)
        return _print_status()
    if args.command == "device-credentials":
        return _device_credentials(args.device_ids)
    if args.command == "down":
        from stack.core import down

        began = time.monotonic()
        stopped = down()
        took = time.monotonic() - began
        print(f"stopped {', '.join(stopped) or 'nothing'} in {took:.1f} s; data kept")
        return 0
    return _print_status()


if __name__ == "__main__":
    sys.exit(main())
