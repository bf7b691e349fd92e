"""The page server through HTTP, its settings and the command line (no broker, no browser)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityconf.errors import UserError
from cityconf.layout import Layout
from live.scenario import scenario_view
from live.server import STATIC_DIR, VENDOR_FILES, LiveServer
from live.settings import LiveSettings

ENV = {
    "MQTT_WS_URL": "ws://127.0.0.1:19001",
    "MQTT_VIEWER_USERNAME": "viewer",
    "MQTT_VIEWER_PASSWORD": "s3cret",
}


@pytest.fixture
def vendor(tmp_path: Path) -> Path:
    """Stand-ins for the npm packages: the server only needs the files to exist."""
    for rel in VENDOR_FILES.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"/* {rel} */")
    images = tmp_path / "leaflet/dist/images"
    images.mkdir(parents=True, exist_ok=True)
    (images / "layers.png").write_bytes(b"\x89PNG")
    return tmp_path


def settings(tmp_path: Path, **extra: str) -> LiveSettings:
    env = {**ENV, "CITYFLEET_STATE_DIR": str(tmp_path / "state"), **extra}
    return LiveSettings.from_env(env, port=0)


@pytest.fixture
def server(tmp_path: Path, vendor: Path) -> Iterator[LiveServer]:
    tiles = {"LIVE_TILE_URL": "https://tiles.example.org/{z}/{x}/{y}.png"}
    with LiveServer(settings(tmp_path, **tiles), scenario_view("smoke"), vendor) as live:
        yield live


def get(server: LiveServer, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_page_and_its_scripts_are_served_with_a_strict_policy(server: LiveServer) -> None:
    status, headers, body = get(server, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert b'src="/static/live.js"' in body
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp
    assert "connect-src 'self' ws://127.0.0.1:19001;" in csp
    assert "img-src 'self' data: https://tiles.example.org;" in csp
    assert server.url.startswith("http://127.0.0.1:")
    status, headers, body = get(server, "/static/live.js")
    assert (status, headers["Content-Type"]) == (200, "text/javascript; charset=utf-8")
    assert body == (STATIC_DIR / "live.js").read_bytes()
    status, _, body = get(server, "/vendor/mqtt/mqtt.min.js")
    assert (status, body) == (200, b"/* mqtt/dist/mqtt.min.js */")
    assert get(server, "/vendor/leaflet/images/layers.png")[0] == 200


def test_config_carries_the_broker_viewer_and_every_route(server: LiveServer) -> None:
    status, headers, body = get(server, "/config.json")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    config = json.loads(body)
    assert config["mqtt"] == {
        "url": "ws://127.0.0.1:19001",
        "username": "viewer",
        "password": "s3cret",
    }
    assert config["tiles"]["url"] == "https://tiles.example.org/{z}/{x}/{y}.png"
    scenario = config["scenario"]
    assert (scenario["name"], scenario["prefix"]) == ("smoke", "smoke")
    [route] = scenario["routes"]
    assert route["id"] == "m6-cov"
    assert route["geojson"]["type"] == "FeatureCollection"
    assert len(route["geojson"]["features"][0]["geometry"]["coordinates"]) > 10


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/static/../server.py",
        "/static/../../pyproject.toml",
        "/vendor/leaflet/../../package.json",
        "/vendor/leaflet/leaflet-src.js",
        "/%2e%2e/pyproject.toml",
        "/nothing",
    ],
)
def test_only_the_page_files_are_served(server: LiveServer, path: str) -> None:
    status, headers, _ = get(server, path)
    assert status == 404
    assert "Content-Security-Policy" in headers


def test_the_script_never_writes_html_from_data() -> None:
    """Values from messages reach the DOM as text; the one innerHTML read escapes config text."""
    script = (STATIC_DIR / "live.js").read_text()
    assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", script)
    assert "eval(" not in script and "new Function" not in script


def test_settings_name_what_is_missing_and_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"MQTT_WS_URL is not set: .*`make up`") as missing:
        LiveSettings.from_env({"CITYFLEET_STATE_DIR": str(tmp_path)})
    assert missing.value.exit_code == 1
    with pytest.raises(UserError, match=r"LIVE_TILE_URL=.*\{z\}, \{x\} and \{y\}") as bad:
        settings(tmp_path, LIVE_TILE_URL="javascript:alert(1)")
    assert bad.value.exit_code == 2
    with pytest.raises(UserError, match="LIVE_PORT='http' is not a port number") as port:
        LiveSettings.from_env({**ENV, "LIVE_PORT": "http"})
    assert port.value.exit_code == 2
    plain = settings(tmp_path)
    assert plain.tile_url is None and plain.tile_origin is None
    assert plain.layout == Layout.at(tmp_path / "state")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "live", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "extra", "expected"),
    [
        (["--scenario", "no-such-scenario"], {}, "error: no-such-scenario: (file): no such"),
        (["--scenario", "smoke"], {"LIVE_TILE_URL": "ftp://x"}, "error: LIVE_TILE_URL='ftp://x'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], extra: dict[str, str], expected: str
) -> None:
    env = {**ENV, "CITYFLEET_STATE_DIR": str(tmp_path), "CITYFLEET_ENV_FILE": "/dev/null"}
    done = run_cli(*args, env={**env, **extra})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(expected), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_a_broker_that_is_down_says_what_to_start(tmp_path: Path) -> None:
    env = {**ENV, "MQTT_WS_URL": "ws://127.0.0.1:1", "CITYFLEET_ENV_FILE": "/dev/null"}
    done = run_cli("--scenario", "smoke", env={**env, "CITYFLEET_STATE_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: Mosquitto's WebSockets listener at ws://127.0.0.1:1 is not reachable; "
        "start the stack with `make up` (then `make status`)"
    )


def test_help_describes_the_command() -> None:
    done = run_cli("--help", env={})
    assert done.returncode == 0
    assert "--run-devices" in done.stdout and "LIVE_TILE_URL" in done.stdout
