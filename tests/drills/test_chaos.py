"""The fault drill, shortened: every component killed or restarted under load, nothing lost.

`test_quick_fault_drill_...` is `make chaos --quick` run as a test: a device reboot, `kill -9`
of the bridge, a Mosquitto restart, `kill -9` of Mosquitto, a Kafka restart, the S3 server down
and `kill -9` of the streaming job, on private servers and a fresh lake root. The drill's own
audit reads silver back and must find every published (device_id, stream, seq) exactly once.

The Mosquitto test is the drill's worst case for the broker alone: a crash while every message
it has acknowledged still waits in the bridge's session (none delivered yet), where its
persistence bound is all that stands between a PUBACK and a loss.
"""

from __future__ import annotations

import re
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from drills import chaos

pytestmark = [pytest.mark.integration]


@pytest.mark.slow
# The drill bounds itself (300 s to recover from each fault, 600 s for silver to catch up), well
# past pytest's default 600 s: on a loaded two-core machine the streaming job's restart alone
# took 205 s, and the test was cut off before the drill could give its verdict.
@pytest.mark.timeout(2400)
def test_quick_fault_drill_loses_and_duplicates_nothing(stack_env, capsys):
    assert chaos.main(["--quick"], env=stack_env) == 0
    out = capsys.readouterr().out
    assert "chaos: OK: 0 missing, 0 duplicated in silver" in out


def autosave_bound(config: str) -> int:
    """Messages a crash can lose: Mosquitto saves after this many changes (each queued
    message is at least one), so what it acknowledged since the last save is fewer."""
    settings = dict(re.findall(r"^(autosave_\w+)\s+(\S+)", config, re.MULTILINE))
    assert settings.get("autosave_on_changes") == "true", "autosave counts time, not changes"
    return int(settings["autosave_interval"])


class Session:
    """A paho MQTT 5 client with a persistent session, as the bridge and the devices use."""

    def __init__(self, broker, user: str, client_id: str) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, broker.password(user))
        self.client.max_inflight_messages_set(500)
        self.session_present: bool | None = None
        self.received: set[int] = set()
        self.acked: set[int] = set()
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.add(int(m.payload))
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, _c, _u, flags, _reason, _p) -> None:
        self.session_present = flags.session_present

    def publish(self, topic: str, n: int) -> None:
        """Publish 1..n at QoS 1 and wait until the broker has acknowledged every one."""
        sent = {i: self.client.publish(topic, str(i).encode(), qos=1) for i in range(1, n + 1)}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.acked = {i for i, info in sent.items() if info.is_published()}
            if len(self.acked) == n:
                return
            time.sleep(0.2)
        raise AssertionError(f"the broker acknowledged {len(self.acked)} of {n}")

    def settle(self) -> None:
        """Wait until no message has arrived for two seconds."""
        seen = -1
        while len(self.received) != seen:
            seen = len(self.received)
            time.sleep(2)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mosquitto_kill_9_loses_at_most_the_autosave_bound(private_mosquitto):
    broker = private_mosquitto()
    bound = autosave_bound(broker.server.config_file.read_text())
    bridge = Session(broker, "bridge", "chaos-bridge")
    bridge.client.subscribe("city/#", qos=1)
    time.sleep(1)
    bridge.close()  # offline: every message now waits in its session, in the broker only
    device = Session(broker, "gateway", "chaos-gateway")
    n = 2 * bound + bound // 3  # not a multiple of the bound: the last save is behind
    device.publish("city/vehicle/chaos-device", n)
    device.close()

    broker.kill()
    broker.start()
    bridge = Session(broker, "bridge", "chaos-bridge")
    bridge.settle()
    bridge.close()

    lost = device.acked - bridge.received
    assert bridge.session_present, "the bridge's session did not survive the crash"
    assert len(lost) <= bound, f"{len(lost)} acknowledged messages lost, bound {bound}"
    assert len(bridge.received) >= n - bound
