"""Process limits: thousands of MQTT connections need thousands of file descriptors."""

from __future__ import annotations

import logging
import resource

log = logging.getLogger(__name__)

WANTED_NOFILE = 1_048_576


def raise_nofile(wanted: int = WANTED_NOFILE) -> int:
    """Raise this process's soft RLIMIT_NOFILE as far as allowed (up to ``wanted``).

    Returns the new soft limit. Root may also raise the hard limit; others stop at it.
    Children started afterwards inherit the limit, which is how the servers get it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else max(soft, min(wanted, hard))
    if target <= soft:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, hard), hard))
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit above %d: %s", soft, exc)
            return soft
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
