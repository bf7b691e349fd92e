"""Where the MQTT broker is, how each role logs in, and the broker's limits: the one reading of
the ``MQTT_*`` settings.

``make up`` writes ``MQTT_URL`` (``mqtt://`` or ``mqtts://host:port``), ``MQTT_CA_FILE`` and one
``MQTT_<ROLE>_USERNAME``/``_PASSWORD`` pair per role to ``.env`` (``cityconf.env`` reads it, the
environment winning). Devices and the bridge build their settings from ``MqttEndpoint``
(subclassing it to add their own fields) and ``login``, so a URL means the same to both.

The limits: the Mosquitto config is generated from them, and the bridge sizes its buffers and
dead letters from them.

``MAX_PACKET_SIZE``: a 1.2 MB payload and about 1 MB of MQTT user properties must still reach
the bridge, which dead-letters them (capped) instead of letting Kafka refuse them; both in one
packet are about 2.2 MB. 4 MiB leaves room for that and still bounds what one client can make
the broker (and the bridge) hold per message. Larger packets are refused by the broker, which
disconnects the sender (MQTT 5 reason 0x95), so nothing bigger ever enters the pipeline.

``MAX_QUEUED_*``: the bridge's persistent session must hold the documented backlog while Kafka
is down (at least 1,000,000 messages; the README's guarantees table). The contract's messages
are 300-600 bytes, so 2,000,000 messages fit in 1 GiB; the byte bound stops a client with
unusually large messages from using the whole machine's memory. These apply to every client's
queue, so a stalled subscriber is bounded the same way.
"""

from __future__ import annotations

import contextlib
import logging
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cityconf.errors import BAD_INPUT, UserError
from cityconf.keys import value

log = logging.getLogger(__name__)

PLAIN_SCHEMES = ("mqtt", "tcp")
TLS_SCHEMES = ("mqtts", "ssl", "tls")

MAX_PACKET_SIZE = 4 * 1024 * 1024
MAX_QUEUED_MESSAGES = 2_000_000
MAX_QUEUED_BYTES = 1024 * 1024 * 1024
MAX_INFLIGHT_MESSAGES = 1000
WANTED_NOFILE = 1_048_576
"""Open files a process holding thousands of MQTT connections (or the broker) asks for."""


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    ca_file: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str], url: str | None = None) -> MqttEndpoint:
        """``url`` (say, a ``--broker`` option) or ``MQTT_URL``, with ``MQTT_CA_FILE`` for TLS."""
        return parse_url(url or value(env, "MQTT_URL"), env.get("MQTT_CA_FILE") or None)


def parse_url(url: str, ca_file: str | None = None) -> MqttEndpoint:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; a bare ``host:port`` is plain MQTT."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in PLAIN_SCHEMES + TLS_SCHEMES or not parts.hostname or port == -1:
        raise UserError(
            f"MQTT URL {url!r}: use mqtt://host:port or mqtts://host:port "
            "(`make up` writes MQTT_URL to .env)",
            BAD_INPUT,
        )
    tls = parts.scheme in TLS_SCHEMES
    return MqttEndpoint(parts.hostname, port or (8883 if tls else 1883), tls, ca_file)


def login(env: Mapping[str, str], role: str) -> tuple[str | None, str | None]:
    """``MQTT_<ROLE>_USERNAME`` and ``_PASSWORD`` (``role`` "device", "gateway", "bridge"); unset
    or empty values are None."""
    prefix = f"MQTT_{role.upper()}_"
    return env.get(f"{prefix}USERNAME") or None, env.get(f"{prefix}PASSWORD") or None


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
