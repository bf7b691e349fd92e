"""Where the MQTT broker is and how each role logs in: the one reading of the ``MQTT_*`` settings.

``make up`` writes ``MQTT_URL`` (``mqtt://`` or ``mqtts://host:port``), ``MQTT_CA_FILE`` and one
``MQTT_<ROLE>_USERNAME``/``_PASSWORD`` pair per role to ``.env`` (``stack.env`` reads it, the
environment winning). Devices and the bridge build their settings from ``MqttEndpoint``
(subclassing it to add their own fields) and ``login``, so a URL means the same to both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_URL = "mqtt://127.0.0.1:1883"
PLAIN_SCHEMES = ("mqtt", "tcp")
TLS_SCHEMES = ("mqtts", "ssl", "tls")


class EndpointError(ValueError):
    """An MQTT URL that cannot be used; ``str(err)`` is the one line to show."""


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool
    ca_file: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str], url: str | None = None) -> MqttEndpoint:
        """``url`` (say, a ``--broker`` option) or ``MQTT_URL``, with ``MQTT_CA_FILE`` for TLS."""
        return parse_url(url or env.get("MQTT_URL") or DEFAULT_URL, env.get("MQTT_CA_FILE") or None)


def parse_url(url: str, ca_file: str | None = None) -> MqttEndpoint:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; a bare ``host:port`` is plain MQTT."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in PLAIN_SCHEMES + TLS_SCHEMES or not parts.hostname or port == -1:
        raise EndpointError(
            f"MQTT URL {url!r}: use mqtt://host:port or mqtts://host:port "
            "(`make up` writes MQTT_URL to .env)"
        )
    tls = parts.scheme in TLS_SCHEMES
    return MqttEndpoint(parts.hostname, port or (8883 if tls else 1883), tls, ca_file)


def login(env: Mapping[str, str], role: str) -> tuple[str | None, str | None]:
    """``MQTT_<ROLE>_USERNAME`` and ``_PASSWORD`` (``role`` "device", "gateway", "bridge"); unset
    or empty values are None."""
    prefix = f"MQTT_{role.upper()}_"
    return env.get(f"{prefix}USERNAME") or None, env.get(f"{prefix}PASSWORD") or None
