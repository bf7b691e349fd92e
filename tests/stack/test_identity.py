"""Against a real Mosquitto: every device is itself. A device cannot connect with another
device's client id or the bridge's, nor publish on another device's topic; after each try the
victim's and the bridge's sessions are intact and nothing is lost. The viewer reads city/# over
WebSockets and nothing else; provisioning is one command; the broker's limits hold."""

from __future__ import annotations

import os
import pwd
import queue
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cityconf import mqtt as mqtt_limits
from cityconf.env import REPO_ROOT
from stack.accounts import VIEWER_CLIENT_PREFIX
from stack.mosquitto import gateway_logins
from tests.stack.mqtt_clients import Listener

pytestmark = pytest.mark.integration
BRIDGE_ID = "cityfleet-bridge-1"


@dataclass
class Session:
    """A paho MQTT 5 client on a background loop, recording what happens to it."""

    client: mqtt.Client
    code: mqtt.ReasonCode | None = None
    session_present: bool = False
    disconnects: list[mqtt.ReasonCode] = field(default_factory=list)
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    acks: dict[int, mqtt.ReasonCode] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.code is not None and not self.code.is_failure

    def publish(self, topic: str, payload: bytes, props: Properties | None = None) -> int:
        """QoS 1; returns the PUBACK's reason code value (0x87: not authorized)."""
        info = self.client.publish(topic, payload, qos=1, properties=props)
        info.wait_for_publish(10)
        return self.acks[info.mid].value

    def subscribe(self, *topics: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        assert done.wait(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    port: int,
    user: str,
    password: str,
    client_id: str,
    *,
    clean_start: bool = True,
    expiry_s: int = 0,
    websockets: bool = False,
) -> Session:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        transport="websockets" if websockets else "tcp",
        reconnect_on_failure=False,
    )
    client.username_pw_set(user, password)
    session = Session(client)
    answered = threading.Event()

    def on_connect(_c, _u, flags, code, _p) -> None:
        session.code, session.session_present = code, flags.session_present
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda _c, _u, _f, code, _p: session.disconnects.append(code)
    client.on_message = lambda _c, _u, m: session.messages.put((m.topic, m.payload))
    client.on_publish = lambda _c, _u, mid, code, _p: session.acks.__setitem__(mid, code)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry_s
    client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
    client.loop_start()
    assert answered.wait(10), "no CONNACK"
    if not session.accepted:
        client.loop_stop()
    return session


def _id() -> str:
    return f"it{uuid.uuid4().hex[:8]}"


@pytest.fixture
def broker(private_mosquitto):
    return private_mosquitto()


def test_a_device_cannot_take_another_devices_client_id(broker) -> None:
    victim, attacker = f"{_id()}-victim", f"{_id()}-attacker"
    logins = broker.device_logins([victim, attacker])
    inspector = Listener(broker.port, "inspector", broker.password("inspector"), "city/+/+")
    device = connect(broker.port, victim, logins[victim], victim)
    try:
        assert device.accepted
        assert device.publish(f"city/gps/{victim}", b"1") == 0
        thief = connect(broker.port, attacker, logins[attacker], victim)
        assert not thief.accepted  # refused before the password is even looked at
        assert thief.code is not None and thief.code.value in (0x86, 0x87)
        # With the right password too: the victim's own password is not enough on a wrong id.
        assert not connect(broker.port, victim, logins[victim], attacker).accepted
        assert device.publish(f"city/gps/{victim}", b"2") == 0
        assert device.disconnects == []  # the victim was never knocked off
        assert [inspector.next(), inspector.next()] == [
            (f"city/gps/{victim}", b"1"), (f"city/gps/{victim}", b"2"),
        ]  # fmt: skip
    finally:
        device.close()
        inspector.close()


def test_a_device_cannot_publish_on_another_devices_topic(broker) -> None:
    victim, attacker = f"{_id()}-victim", f"{_id()}-attacker"
    logins = broker.device_logins([victim, attacker])
    inspector = Listener(broker.port, "inspector", broker.password("inspector"), "city/+/+")
    device = connect(broker.port, attacker, logins[attacker], attacker)
    try:
        assert device.publish(f"city/gps/{victim}", b"forged") == 0x87  # not authorized
        assert device.publish(f"city/gps/{attacker}", b"sentinel") == 0
        # One connection's messages arrive in order: the forged one would be first.
        assert inspector.next() == (f"city/gps/{attacker}", b"sentinel")
    finally:
        device.close()
        inspector.close()


def test_a_device_cannot_take_the_bridges_session_and_its_backlog_survives(broker) -> None:
    device_id, attacker = f"{_id()}-dev", f"{_id()}-attacker"
    logins = broker.device_logins([device_id, attacker])
    bridge_pw = broker.password("bridge")
    bridge = connect(broker.port, "bridge", bridge_pw, BRIDGE_ID, clean_start=False, expiry_s=600)
    bridge.subscribe("city/+/+")
    bridge.close()  # away: the broker queues for its persistent session
    device = connect(broker.port, device_id, logins[device_id], device_id)
    sent = [f"m{i}".encode() for i in range(20)]
    try:
        for payload in sent:
            assert device.publish(f"city/vehicle/{device_id}", payload) == 0
        for login in (logins[attacker], logins[device_id]):
            thief = connect(broker.port, attacker, login, BRIDGE_ID, clean_start=True)
            assert not thief.accepted  # a clean start here would have wiped the backlog
        back = connect(broker.port, "bridge", bridge_pw, BRIDGE_ID, clean_start=False, expiry_s=600)
        try:
            assert back.session_present
            got = [back.messages.get(timeout=10) for _ in sent]
            assert got == [(f"city/vehicle/{device_id}", p) for p in sent]
        finally:
            back.close()
    finally:
        device.close()


def test_the_viewer_reads_city_only_over_websockets(broker) -> None:
    device_id = _id()
    login = broker.device_logins([device_id])[device_id]
    password = broker.password("viewer")
    viewer = connect(
        broker.ws_port, "viewer", password, f"{VIEWER_CLIENT_PREFIX}{_id()}", websockets=True
    )
    inspector = Listener(
        broker.port, "inspector", broker.password("inspector"), "$SYS/broker/version"
    )
    try:
        assert viewer.accepted
        assert inspector.next()[0] == "$SYS/broker/version"  # retained: sent at once if allowed
        viewer.subscribe("city/#", "$SYS/broker/version", "$CONTROL/#")
        assert viewer.publish(f"city/gps/{device_id}", b"from a browser") == 0x87
        assert viewer.publish("city/gps/viewer", b"as itself") == 0x87
        device = connect(broker.port, device_id, login, device_id)
        assert device.publish(f"city/gps/{device_id}", b"live") == 0
        device.close()
        assert viewer.messages.get(timeout=10) == (f"city/gps/{device_id}", b"live")
        assert viewer.messages.empty()  # no $SYS, and neither forged message was relayed
    finally:
        viewer.close()
        inspector.close()
    # One connection per browser tab, each its own id; never a device's or the bridge's id.
    for client_id in (device_id, BRIDGE_ID, "viewer", VIEWER_CLIENT_PREFIX):
        assert not connect(broker.ws_port, "viewer", password, client_id, websockets=True).accepted


def test_a_gateway_publishes_only_for_the_devices_it_was_provisioned_for(broker) -> None:
    gw, mine, other = f"{_id()}-gw-000", [f"{_id()}-a", f"{_id()}-b"], f"{_id()}-c"
    password = gateway_logins(broker.env, {gw: mine})[gw]
    inspector = Listener(broker.port, "inspector", broker.password("inspector"), "city/+/+")
    assert not connect(broker.port, gw, password, mine[0]).accepted  # its own client id only
    gateway = connect(broker.port, gw, password, gw)
    try:
        assert gateway.publish(f"city/gps/{other}", b"forged") == 0x87
        for device in mine:
            assert gateway.publish(f"city/gps/{device}", b"ok") == 0
        assert [inspector.next(), inspector.next()] == [(f"city/gps/{d}", b"ok") for d in mine]
        # Re-provisioned for another device: the running broker applies it at once.
        gateway_logins(broker.env, {gw: [other]})
        assert gateway.publish(f"city/gps/{other}", b"now mine") == 0
        assert gateway.publish(f"city/gps/{mine[0]}", b"no longer") == 0x87
        assert inspector.next() == (f"city/gps/{other}", b"now mine")
    finally:
        gateway.close()
        inspector.close()


def test_device_credentials_command_provisions_the_running_broker(broker) -> None:
    device_id = _id()
    env = {**os.environ, **broker.env, "CITYFLEET_ENV_FILE": os.devnull}

    def run(*ids: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stack", "device-credentials", *ids],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    first = run(device_id)
    assert first.returncode == 0, first.stderr
    fields = dict(line.split(" ", 1) for line in first.stdout.splitlines() if " " in line)
    assert fields["username"] == device_id
    session = connect(broker.port, device_id, fields["password"], device_id)
    assert session.accepted  # at once: the running broker re-read its password file
    session.close()
    assert run(device_id).stdout == first.stdout  # idempotent: same login, nothing new
    bad = run("city/#")
    assert bad.returncode == 2 and bad.stderr.startswith("error: device id")
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_packets_up_to_the_limit_pass_and_larger_ones_are_refused(broker) -> None:
    gateway = connect(broker.port, "gateway", broker.password("gateway"), _id())
    inspector = Listener(broker.port, "inspector", broker.password("inspector"), "city/big/+")
    try:
        # What the bridge must see to dead-letter it: a 1.2 MB payload with ~1 MB of properties.
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [(f"k{i}", "v" * 1000) for i in range(1000)]
        payload = os.urandom(1_200_000)
        assert gateway.publish("city/big/a", payload, props) == 0
        assert inspector.next() == ("city/big/a", payload)
        too_big = os.urandom(mqtt_limits.MAX_PACKET_SIZE + 1)
        gateway.client.publish("city/big/b", too_big, qos=1)
        for _ in range(100):
            if gateway.disconnects:
                break
            threading.Event().wait(0.1)
        assert gateway.disconnects  # the broker drops a client sending an oversize packet
        with pytest.raises(queue.Empty):
            inspector.next(timeout=1.0)
    finally:
        gateway.close()
        inspector.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="the broker drops root only when started as root")
def test_the_broker_started_as_root_runs_as_mosquitto_with_private_files(broker) -> None:
    mosquitto = pwd.getpwnam("mosquitto")
    assert psutil.Process(broker.pid).uids().effective == mosquitto.pw_uid
    server = broker.server
    for path in (server.config_file, server.passwords.path, server.home / "acl", server.home):
        assert path.stat().st_uid == mosquitto.pw_uid, path
        assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_a_broker_running_an_older_config_is_restarted_with_its_sessions(broker) -> None:
    server = broker.server
    device_id = _id()
    login = broker.device_logins([device_id])[device_id]
    bridge_pw = broker.password("bridge")
    bridge = connect(broker.port, "bridge", bridge_pw, BRIDGE_ID, clean_start=False, expiry_s=600)
    bridge.subscribe("city/+/+")
    bridge.close()
    device = connect(broker.port, device_id, login, device_id)
    assert device.publish(f"city/gps/{device_id}", b"queued") == 0
    device.close()
    assert not server.outdated()
    server.config_file.write_text(server.config_file.read_text() + "\n# an older config\n")
    assert server.outdated()
    before = server.pid
    server.start()  # what `stack up` does with an outdated broker
    assert server.pid != before and not server.outdated()
    back = connect(broker.port, "bridge", bridge_pw, BRIDGE_ID, clean_start=False, expiry_s=600)
    try:
        assert back.session_present
        assert back.messages.get(timeout=10) == (f"city/gps/{device_id}", b"queued")
    finally:
        back.close()
