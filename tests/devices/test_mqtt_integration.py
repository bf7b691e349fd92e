"""Against the real Mosquitto: seq arrives contiguous, the last will fires, the ACL holds, and an
offline device replays its buffer in order."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
import yaml

from devices.mqtt import FleetMqttSettings, MqttNetwork
from devices.scenario import Scenario
from stack.mosquitto import device_logins

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


class Listener:
    """Inspector subscriber on a background paho loop; re-subscribes after a reconnect."""

    def __init__(self, env: dict[str, str], topics: list[str], port: int | None = None) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        ready = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"test-devices-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(env["MQTT_USERNAME"], env["MQTT_PASSWORD"])

        def on_connect(c, _u, _f, _rc, _p) -> None:
            c.subscribe([(t, 1) for t in topics])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", port or int(env.get("MQTT_PORT", 1883)))
        self.client.loop_start()
        assert ready.wait(10), "subscription not acknowledged"

    def drain(self, quiet_s: float = 1.5) -> list[tuple[str, bytes, bool]]:
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=quiet_s))
            except queue.Empty:
                return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _prefix() -> str:
    return f"it{uuid.uuid4().hex[:8]}"


def _devices_cmd(prefix: str, *extra: str, scenario: str = "smoke") -> list[str]:
    return [sys.executable, "-m", "devices", "--scenario", scenario, "--id-prefix", prefix, *extra]


def _smoke_multiplexed(tmp_path: Path, gateways: int) -> str:
    """The smoke scenario with its devices sharing ``gateways`` connections."""
    data = yaml.safe_load((REPO / "scenarios" / "smoke.yaml").read_text())
    for route in data["routes"]:
        route["file"] = str(REPO / "scenarios" / route["file"])
    data["mqtt"] = {**data.get("mqtt", {}), "multiplex": gateways}
    path = tmp_path / "smoke-multiplexed.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


SMOKE_DEVICES = ("veh-00001", "veh-00002", "cam-001", "wx-001", "incidents")


@pytest.mark.parametrize("gateways", [0, 2], ids=["own-connections", "2-gateways"])
def test_every_device_seq_arrives_contiguous(
    stack_env: dict[str, str], tmp_path: Path, gateways: int
) -> None:
    prefix = _prefix()
    scenario = _smoke_multiplexed(tmp_path, gateways) if gateways else "smoke"
    listener = Listener(stack_env, [f"city/+/{prefix}-{d}" for d in SMOKE_DEVICES])
    manifest = tmp_path / "manifest.json"
    args = ("--fast", "--no-state", "-q", "--manifest", str(manifest))
    try:
        done = subprocess.run(
            _devices_cmd(prefix, *args, scenario=scenario),
            capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, **stack_env},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        got = listener.drain()
    finally:
        listener.close()
    seqs: dict[tuple[str, str], list[int]] = defaultdict(list)
    statuses = defaultdict(list)
    for topic, payload, _ in got:
        _, stream, device = topic.split("/")
        body = orjson.loads(payload)
        if stream == "status":
            statuses[device].append(body["status"])
        else:
            seqs[(device, stream)].append(body["seq"])
    expected = json.loads(manifest.read_text())["devices"]
    assert expected
    for device, streams in expected.items():
        assert statuses[device][0] == "online" and statuses[device][-1] == "offline"
        for stream, figures in streams.items():
            # In order and each once: no faults are configured, so no duplicates either.
            want = list(range(1, figures["last_seq"] + 1))
            assert seqs[(device, stream)] == want, (device, stream)


def test_devices_log_in_as_themselves_or_through_the_gateway_account(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Provisioned per device by default; ``MQTT_DEVICE_LOGIN=gateway`` (docker-compose, whose
    broker the fleet cannot provision) shares the trusted gateway account instead."""
    env = {**os.environ, **stack_env}
    state = Path(stack_env["MQTT_BROKER_STATE_DIR"])
    passwd = state / "config" / "mosquitto" / "passwd"
    for extra, provisioned in (({}, True), ({"MQTT_DEVICE_LOGIN": "gateway"}, False)):
        prefix = _prefix()
        done = subprocess.run(
            _devices_cmd(prefix, "--fast", "--no-state", "-q"),
            capture_output=True, text=True, cwd=REPO, timeout=120, env={**env, **extra},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (f"\n{prefix}-veh-00001:" in passwd.read_text()) is provisioned


def test_last_will_fires_when_the_device_process_is_killed(stack_env: dict[str, str]) -> None:
    prefix = _prefix()
    device = f"{prefix}-veh-00001"
    listener = Listener(stack_env, [f"city/status/{device}"])
    proc = subprocess.Popen(
        _devices_cmd(prefix, "--speed", "1", "--duration", "600", "--no-state", "-q"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
        env={**os.environ, **stack_env},
    )  # fmt: skip
    try:
        topic, payload, _ = listener.messages.get(timeout=60)
        assert orjson.loads(payload)["status"] == "online"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        topic, payload, _ = listener.messages.get(timeout=30)
        assert topic == f"city/status/{device}"
        assert orjson.loads(payload)["status"] == "offline"
    finally:
        proc.kill()
        listener.close()
    # The will is retained: a newcomer learns the device is offline.
    late = Listener(stack_env, [f"city/status/{device}"])
    try:
        topic, payload, retained = late.messages.get(timeout=10)
        assert retained and orjson.loads(payload)["status"] == "offline"
    finally:
        late.close()


def _logins(env: dict[str, str], device: str) -> dict[str, tuple[str, str]]:
    """The device's own login, provisioned on the broker ``env`` names."""
    return {device: (device, device_logins(env, [device])[device])}


def _network(env: dict[str, str], port: int | None = None, **mqtt_options: int) -> MqttNetwork:
    settings = FleetMqttSettings.from_env(env, f"mqtt://127.0.0.1:{port}" if port else None)
    scenario = Scenario.model_validate(
        {"name": "it", "duration_s": 1, "routes": [{"id": "r", "file": "x"}], "mqtt": mqtt_options}
    )
    return MqttNetwork(settings, scenario, seed=1)


def test_an_idle_session_pings_and_qos2_completes(stack_env: dict[str, str]) -> None:
    device = f"{_prefix()}-idle"
    topic = f"city/vehicle/{device}"
    listener = Listener(stack_env, [topic])
    net = _network(stack_env, keepalive_s=5)
    try:
        net.add([device], _logins(stack_env, device))
        net.start()
        conn = net.conns[0]
        pings, deadline = 0, time.monotonic() + 7
        while time.monotonic() < deadline:
            before = conn.ping_at
            net.poll(0.05)
            pings += bool(conn.ping_at and conn.ping_at != before)
        for _ in range(40):  # the last ping's answer
            if not conn.ping_at:
                break
            net.poll(0.05)
        assert pings >= 2 and not conn.ping_at and net.online == 1 and net.reconnects == 0
        net.send(device, topic, b'{"qos": 2}', 2)
        assert net.close(timeout=10) == 0
        got = listener.drain(2.0)
    finally:
        listener.close()
    assert [p for _, p, _ in got] == [b'{"qos": 2}']


def test_acl_stops_a_device_publishing_as_another(stack_env: dict[str, str]) -> None:
    me, other = f"{_prefix()}-me", f"{_prefix()}-victim"
    listener = Listener(stack_env, [f"city/vehicle/{me}", f"city/vehicle/{other}"])
    net = _network(stack_env)
    try:
        net.add([me], _logins(stack_env, me))
        net.start()
        net.send(me, f"city/vehicle/{other}", b'{"forged": true}', 1)
        net.send(me, f"city/vehicle/{me}", b'{"own": true}', 1)
        assert net.close(timeout=10) == 0
        got = listener.drain(2.0)
    finally:
        listener.close()
    topics = [t for t, _, _ in got]
    assert topics == [f"city/vehicle/{me}"]


def test_offline_device_buffers_and_replays_in_order(
    stack_env: dict[str, str], private_mosquitto
) -> None:
    broker = private_mosquitto(env=stack_env)
    device = f"{_prefix()}-buf"
    topic = f"city/vehicle/{device}"
    net = _network(stack_env, broker.port)
    net.add([device], {device: (device, broker.device_logins([device])[device])})
    net.start()

    def pump(until, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            net.poll(0.05)
        assert until()

    for seq in range(1, 6):
        net.send(device, topic, orjson.dumps({"seq": seq}), 1)
    pump(lambda: net.unacked == 0)
    broker.stop()
    pump(lambda: net.online == 0)
    for seq in range(6, 21):
        net.send(device, topic, orjson.dumps({"seq": seq}), 1)
    assert net.buffered == 15
    for conn in net.conns:  # hold the device's next retry until the listener is subscribed
        conn.retry_at = float("inf")
    net.poll(0.2)
    broker.start()
    listener = Listener(stack_env, [topic], port=broker.port)
    for conn in net.conns:
        conn.retry_at = 0.0
    try:
        pump(lambda: net.online == 1 and net.buffered == 0 and net.unacked == 0)
        assert net.close(timeout=10) == 0
        got = [orjson.loads(p)["seq"] for t, p, _ in listener.drain(2.0) if t == topic]
    finally:
        listener.close()
    assert got == list(range(6, 21))
