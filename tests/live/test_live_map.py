"""The live map in a real browser while a small scenario runs against the real broker.

Headless Chromium loads the page, the smoke scenario's devices publish through Mosquitto, and
the test reads from the DOM what a person would see: devices appearing, their count and the
message counter growing, vehicles greyed when they go offline, no JavaScript error; a hostile
payload stays text. Screenshots are kept under the state folder's artifacts/.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cityconf.env import load_env
from drills import children
from live.browser import WatchedPage
from live.server import LiveServer, serve
from stack.process import Process, running
from tests.browser import artifacts_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_env(stack_env: dict[str, str]) -> dict[str, str]:
    """The stack's values, then `.env` and the environment on top (the environment wins)."""
    env = {**stack_env, **load_env()}
    if not env.get("MQTT_WS_URL"):
        pytest.fail("the stack wrote no MQTT_WS_URL: Mosquitto has no WebSockets listener")
    return env


@pytest.fixture
def prefix() -> str:
    """A device-id prefix of this test alone: retained statuses of other runs stay out."""
    return f"livetest{uuid.uuid4().hex[:8]}"


@pytest.fixture
def live_server(live_env: dict[str, str], prefix: str) -> Iterator[LiveServer]:
    with serve("smoke", live_env, id_prefix=prefix, port=0) as server:
        yield server


@pytest.fixture
def smoke_fleet(live_env: dict[str, str], prefix: str, tmp_path: Path) -> Callable[..., Process]:
    """The smoke scenario's devices under this test's prefix at ``speed`` (not yet started)."""

    def make(speed: float) -> Process:
        env = {**live_env, "PYTHONUNBUFFERED": "1"}
        flags = ["--speed", str(speed), "--start", "now", "--no-state", "--id-prefix", prefix]
        return children.devices("smoke", tmp_path, env, *flags)

    return make


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def open_page(page: WatchedPage, server: LiveServer) -> None:
    page.page.goto(server.url)
    wait_for(
        "the page to connect to the broker", lambda: page.attribute("data-connected") == "true"
    )


def test_devices_appear_move_and_go_offline(
    browser_page: WatchedPage,
    live_server: LiveServer,
    smoke_fleet: Callable[..., Process],
    prefix: str,
) -> None:
    open_page(browser_page, live_server)
    assert browser_page.number("data-messages") == 0
    assert browser_page.page.locator("path.leaflet-interactive").count() >= 1  # the route
    devices = smoke_fleet(speed=8)
    with running(devices):
        wait_for("two vehicles online", lambda: browser_page.number("data-devices-online") >= 2)
        first = browser_page.number("data-messages")
        wait_for(
            "the message counter to grow",
            lambda: browser_page.number("data-messages") > first,
        )
        wait_for(
            "vehicle markers",
            lambda: browser_page.page.locator(".vehicle-icon").count() == 2,
        )
        browser_page.screenshot(artifacts_dir() / "live-map-running.png")
        online = browser_page.number("data-devices-online")
        assert 2 <= online <= 5  # 2 vehicles, a camera, a weather station, incidents
        assert browser_page.attribute("data-sim-time").endswith("Z")

        browser_page.page.locator(".vehicle-icon").first.click()
        popup = browser_page.page.locator(".leaflet-popup-content")
        popup.wait_for()
        text = popup.inner_text()
        assert f"{prefix}-veh-" in text
        assert "speed_kmh" in text and "heading_deg" in text

        devices.wait(timeout=60)
    devices.check()
    # At exit every device publishes `offline`: the page greys them out and counts none.
    wait_for("every device offline", lambda: browser_page.number("data-devices-online") == 0)
    wait_for(
        "vehicles greyed out",
        lambda: browser_page.page.locator(".vehicle-icon.offline").count() == 2,
    )
    assert browser_page.number("data-devices-seen") >= 4
    assert browser_page.errors == []
    own = (live_server.url, f"blob:{live_server.url}")  # mqtt.js's timer worker is a blob
    outside = [url for url in browser_page.requests if not url.startswith(own)]
    assert outside == [], "without a tile URL the page fetches nothing from elsewhere"


def test_a_killed_fleet_greys_out_by_its_last_will(
    browser_page: WatchedPage,
    live_server: LiveServer,
    smoke_fleet: Callable[..., Process],
) -> None:
    open_page(browser_page, live_server)
    devices = smoke_fleet(speed=4)
    with running(devices):
        wait_for(
            "vehicle markers",
            lambda: browser_page.page.locator(".vehicle-icon").count() == 2,
        )
        assert browser_page.number("data-devices-online") >= 2
        devices.kill()  # kill -9: no clean offline, the broker publishes each device's will
    wait_for("every will", lambda: browser_page.number("data-devices-online") == 0)
    wait_for(
        "vehicles greyed out",
        lambda: browser_page.page.locator(".vehicle-icon.offline").count() == 2,
    )
    assert browser_page.errors == []


def test_a_hostile_payload_is_shown_as_text(
    browser_page: WatchedPage, live_server: LiveServer, live_env: dict[str, str], prefix: str
) -> None:
    open_page(browser_page, live_server)
    device_id = f"{prefix}-<img src=x onerror=window.pwned=1>"
    payload = {
        "device_id": device_id,
        "seq": 1,
        "timestamp": "2026-11-23T08:00:00.000Z",
        "latitude": 52.45,
        "longitude": -1.6,
        "speed_kmh": 80.0,
        "heading_deg": 270.0,
        "make": "<script>window.pwned=2</script><b>bold</b>",
    }
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-gw")
    client.username_pw_set(live_env["MQTT_GATEWAY_USERNAME"], live_env["MQTT_GATEWAY_PASSWORD"])
    client.connect(live_env.get("MQTT_HOST", "127.0.0.1"), int(live_env["MQTT_PORT"]))
    client.loop_start()
    try:
        client.publish(f"city/vehicle/{device_id}", json.dumps(payload), qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    marker = browser_page.page.locator(".vehicle-icon")
    wait_for("the hostile vehicle's marker", lambda: marker.count() == 1)
    assert marker.first.get_attribute("title") == device_id
    marker.first.click()
    popup = browser_page.page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert payload["make"] in popup.inner_text()
    assert popup.locator("script, img, b").count() == 0
    assert browser_page.page.evaluate("() => window.pwned") is None
    assert browser_page.errors == []


# The smallest valid PNG (1x1): a tile server only has to answer with an image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cff0bf1e0005ff02fe7e4e9b620000000049454e44ae426082"
)


@pytest.fixture
def tile_server() -> Iterator[tuple[str, list[str]]]:
    """A local tile server: its URL template and the paths it was asked for."""
    asked: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{{z}}/{{x}}/{{y}}.png", asked
    server.shutdown()
    server.server_close()


def test_tiles_appear_only_when_configured(
    browser_page: WatchedPage,
    live_env: dict[str, str],
    prefix: str,
    tile_server: tuple[str, list[str]],
) -> None:
    url, asked = tile_server
    attribution = "<b>Tiles</b> & co"
    env = {**live_env, "LIVE_TILE_URL": url, "LIVE_TILE_ATTRIBUTION": attribution}
    with serve("smoke", env, id_prefix=prefix, port=0) as server:
        open_page(browser_page, server)
        tiles = browser_page.page.locator("img.leaflet-tile-loaded")
        wait_for("background tiles", lambda: tiles.count() >= 1)
    assert asked and all(path.endswith(".png") for path in asked)
    credit = browser_page.page.locator(".leaflet-control-attribution").inner_text()
    assert attribution in credit  # shown as text, not as markup
    assert browser_page.errors == []  # the policy lets the tile server's images in
