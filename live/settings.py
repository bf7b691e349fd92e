"""The live map's settings, built once from `.env` + environment at the command's edge."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cityconf import keys
from cityconf.errors import UserError
from cityconf.layout import Layout

HOST = "127.0.0.1"  # the page server, like every server of the project, is local only
_TILE_URL = re.compile(r"^https?://[^\s\"'<>]+$")


@dataclass(frozen=True)
class LiveSettings:
    """Where the page server listens and what the page connects to.

    ``tile_url`` is an optional background layer (a ``{z}/{x}/{y}`` template); without it the
    page draws the routes on a clean base and needs nothing from the internet.
    """

    layout: Layout
    port: int
    ws_url: str
    viewer_username: str
    viewer_password: str
    tile_url: str | None = None
    tile_attribution: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str], port: int | None = None) -> LiveSettings:
        return cls(
            layout=Layout.from_env(env),
            port=keys.port(env, "LIVE_PORT", allow_zero=True) if port is None else port,
            ws_url=_required(env, "MQTT_WS_URL"),
            viewer_username=_required(env, "MQTT_VIEWER_USERNAME"),
            viewer_password=_required(env, "MQTT_VIEWER_PASSWORD"),
            tile_url=_tile_url(env),
            tile_attribution=keys.value(env, "LIVE_TILE_ATTRIBUTION"),
        )

    @property
    def ws_origin(self) -> str:
        parts = urlsplit(self.ws_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def tile_origin(self) -> str | None:
        if not self.tile_url:
            return None
        parts = urlsplit(self.tile_url)
        return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key)
    if not value:
        raise UserError(
            f"{key} is not set: the live map needs Mosquitto's WebSockets listener and its "
            "read-only viewer account; start the stack with `make up` (it writes them to .env)"
        )
    return value


def _tile_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("LIVE_TILE_URL") or None
    if raw is None:
        return None
    if not _TILE_URL.match(raw) or not all(p in raw for p in ("{z}", "{x}", "{y}")):
        raise UserError(
            f"LIVE_TILE_URL={raw!r} is not a tile URL template; give an http(s) URL with "
            "{z}, {x} and {y}, e.g. https://tiles.example.org/{z}/{x}/{y}.png, or unset it",
            exit_code=2,
        )
    return raw
