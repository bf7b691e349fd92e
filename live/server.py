"""The page server: the live map's own files, its pinned browser libraries and its config.

It serves a fixed table of paths built at start-up (nothing is looked up on disk per request,
so no request can reach another file), bound to 127.0.0.1, with a Content-Security-Policy that
lets the page run only its own scripts and talk only to the broker (and the tile server, when
one is configured): nothing that arrives over MQTT can run in the browser.
"""

from __future__ import annotations

import logging
import mimetypes
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import orjson

from cityconf.errors import UserError
from live.scenario import scenario_view
from live.settings import HOST, LiveSettings
from stack.install import install_web_assets
from stack.process import port_owner

STATIC_DIR = Path(__file__).resolve().parent / "static"
# URL path -> file under node_modules: only what the page loads.
VENDOR_FILES = {
    "/vendor/leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "/vendor/leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "/vendor/mqtt/mqtt.min.js": "mqtt/dist/mqtt.min.js",
}
LEAFLET_IMAGES = "leaflet/dist/images"  # leaflet.css refers to these by relative URL
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str
    cache: str = "no-cache"


def _file(path: Path) -> Resource:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith(("javascript", "json")):
        kind += "; charset=utf-8"
    return Resource(path.read_bytes(), kind)


def page_config(settings: LiveSettings, scenario: dict[str, Any]) -> dict[str, Any]:
    """What the page reads first: the broker, the read-only viewer login, tiles, the routes.

    The viewer account may only subscribe to ``city/#``, so handing its password to a page
    on this machine gives nothing a local user could not read with ``mosquitto_sub``.
    """
    return {
        "mqtt": {
            "url": settings.ws_url,
            "username": settings.viewer_username,
            "password": settings.viewer_password,
        },
        "tiles": {"url": settings.tile_url, "attribution": settings.tile_attribution},
        "scenario": scenario,
    }


def build_site(
    settings: LiveSettings, scenario: dict[str, Any], vendor_dir: Path
) -> dict[str, Resource]:
    site = {"/": _file(STATIC_DIR / "index.html")}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.name != "index.html":
            site[f"/static/{path.name}"] = _file(path)
    for url, rel in VENDOR_FILES.items():
        site[url] = _file(vendor_dir / rel)
    for image in sorted((vendor_dir / LEAFLET_IMAGES).glob("*.png")):
        site[f"/vendor/leaflet/images/{image.name}"] = _file(image)
    config = orjson.dumps(page_config(settings, scenario))
    site["/config.json"] = Resource(config, "application/json", cache="no-store")
    return site


def content_security_policy(settings: LiveSettings) -> str:
    images = " ".join(filter(None, ["'self'", "data:", settings.tile_origin]))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self' {settings.ws_origin}; "
        # mqtt.js keeps its keepalive timer in a worker it makes from a blob, so that a tab in
        # the background still pings the broker in time.
        "worker-src blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        resource = self.server.site.get(self.path.split("?", 1)[0])
        if resource is None:
            resource = Resource(b"not found\n", "text/plain; charset=utf-8")
            self.send_response(HTTPStatus.NOT_FOUND)
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        self.send_header("Cache-Control", resource.cache)
        self.send_header("Content-Security-Policy", self.server.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if with_body:
            self.wfile.write(resource.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, site: dict[str, Resource], csp: str) -> None:
        self.site = site
        self.csp = csp
        super().__init__((HOST, port), _Handler)


class LiveServer:
    """The page server in a background thread: ``with LiveServer(...) as server: server.url``."""

    def __init__(self, settings: LiveSettings, scenario: dict[str, Any], vendor_dir: Path) -> None:
        self.settings = settings
        self.site = build_site(settings, scenario, vendor_dir)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int | None = None) -> LiveServer:
        """Bind (``port`` 0: any free port) and serve; raises OSError when the port is taken."""
        chosen = self.settings.port if port is None else port
        self._server = _Server(chosen, self.site, content_security_policy(self.settings))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="live-http", daemon=True
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LiveServer:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()


def require_broker(ws_url: str) -> None:
    """Fail with what to start when nothing listens at the broker's WebSockets URL."""
    parts = urlsplit(ws_url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=2.0):
            return
    except OSError:
        raise UserError(
            f"Mosquitto's WebSockets listener at {ws_url} is not reachable; start the stack "
            "with `make up` (then `make status`)"
        ) from None


def serve(
    scenario: str, env: Mapping[str, str], id_prefix: str | None = None, port: int | None = None
) -> LiveServer:
    """The live map of ``scenario``, serving: settings, broker check, npm packages, bind.

    Raises ScenarioError for a bad scenario and UserError for a bad setting, a broker that is
    down or a port that is taken, each saying what to do.
    """
    view = scenario_view(scenario, id_prefix)
    settings = LiveSettings.from_env(env, port)
    require_broker(settings.ws_url)
    server = LiveServer(settings, view, install_web_assets(settings.layout))
    try:
        return server.start()
    except OSError:
        owner = port_owner(settings.port) or "another process"
        raise UserError(
            f"port {settings.port} is in use by {owner}; set LIVE_PORT or pass --port "
            "(0 picks a free one)"
        ) from None
