"""Process limits: thousands of MQTT connections need thousands of file descriptors."""

from __future__ import annotations

import contextlib
import logging
import resource

log = logging.getLogger(__name__)

WANTED_NOFILE = 1_048_576


def raise_nofile(wanted: int = WANTED_NOFILE) -> int:
    """Raise this process's RLIMIT_NOFILE towards ``wanted``; returns the new soft limit.

    Root (with CAP_SYS_RESOURCE) may lift the hard limit too; otherwise the soft limit stops
    at the hard one (containers often cap it, e.g. at 20,000). Children started afterwards
    inherit the limit, which is how the servers get it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted or soft == resource.RLIM_INFINITY:
        return soft
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
        return wanted
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit above %d: %s", soft, exc)
        return soft
    return ceiling
