"""bridge.mqtt refuses, in one line, a paho its private hooks were not written for."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import paho.mqtt.client as paho
from paho.mqtt import __version__ as installed
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bridge.mqtt import PAHO_RANGE, member_problem, version_problem
from cityconf.env import REPO_ROOT


def client() -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)


def test_the_installed_paho_passes() -> None:
    assert version_problem(installed) is None
    assert member_problem(paho, client()) is None


def test_versions_outside_the_range_are_refused() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "paho-mqtt>=2.2.0,<2.3.0" in pyproject["project"]["dependencies"]
    assert PAHO_RANGE == ((2, 2, 0), (2, 3, 0))  # the range pyproject.toml pins
    assert version_problem("2.2.0") is None and version_problem("2.2.9") is None
    for version in ("2.1.0", "2.3.0", "3.0.0", "2.10.1", "main"):
        problem = version_problem(version)
        assert problem == (
            f"paho-mqtt {version} is installed but bridge/mqtt.py was written for >=2.2.0,<2.3.0"
        )


def test_a_missing_or_changed_private_member_is_named() -> None:
    class Renamed(paho.Client):
        _packet_handle = None  # as if paho had renamed its packet dispatcher

        def _packet_queue(self, cmd, blob, mid, qos, info=None):  # type: ignore[override]
            return super()._packet_queue(cmd, blob, mid, qos, info)

    probe = Renamed(CallbackAPIVersion.VERSION2)
    del probe._last_bytes_received
    probe._in_packet = {"command": 0}

    class Module:
        MalformedPacket = paho.MalformedPacket

    problem = member_problem(Module, probe)
    assert problem == (
        "paho-mqtt lacks what bridge/mqtt.py uses: _last_bytes_received, _packet_handle, "
        "paho.mqtt.client.time_func, _in_packet's keys, _packet_queue(command, packet, mid, qos)"
    )
    assert "\n" not in problem


def test_the_bridge_exits_with_one_line_on_another_paho(tmp_path) -> None:
    """An older paho's version string: ``python -m bridge`` says why in one line, no traceback,
    and exits 1 (a failure the message explains: the input was fine)."""
    fake = tmp_path / "sitecustomize.py"
    fake.write_text("import paho.mqtt\npaho.mqtt.__version__ = '2.1.0'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bridge", "--help"],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        "cityfleet-bridge: paho-mqtt 2.1.0 is installed but bridge/mqtt.py was written for "
        ">=2.2.0,<2.3.0; install the pinned one: pip install -e ."
    ]
