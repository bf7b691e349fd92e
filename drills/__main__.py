"""``python -m drills demo|chaos|cluster`` (``cityfleet-drills``): run the pipeline end to end."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from cityconf.errors import guarded

COMMANDS = {
    "demo": ("drills.demo", "the whole pipeline on one scenario, ending in a report (make demo)"),
    "chaos": ("drills.chaos", "kill and restart every component under load, then audit"),
    "cluster": ("drills.cluster", "faults on the cluster topology (make chaos TOPOLOGY=cluster)"),
}
USAGE = "usage: python -m drills {" + ",".join(COMMANDS) + "} [--help]"


def usage() -> str:
    lines = [USAGE, "", "commands (each takes --help):"]
    lines += [f"  {name:<8} {about}" for name, (_module, about) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    if args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args[0] not in COMMANDS:
        print(f"{usage()}\npython -m drills: unknown command {args[0]!r}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    return guarded(lambda: module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
