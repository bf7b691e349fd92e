"""One reading of MQTT_URL and the role logins, shared by devices and the bridge."""

from __future__ import annotations

import pytest

from bridge.settings import load_settings
from cityconf.errors import UserError
from cityconf.mqtt import MqttEndpoint, login, parse_url
from devices.mqtt import BrokerError, FleetMqttSettings


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("mqtt://broker:1884", ("broker", 1884, False)),
        ("mqtts://broker", ("broker", 8883, True)),
        ("ssl://broker:9999", ("broker", 9999, True)),
        ("tcp://10.0.0.1", ("10.0.0.1", 1883, False)),
        ("127.0.0.1:1885", ("127.0.0.1", 1885, False)),
    ],
)
def test_urls(url: str, want: tuple[str, int, bool]) -> None:
    e = parse_url(url)
    assert (e.host, e.port, e.tls) == want


@pytest.mark.parametrize("url", ["http://broker", "mqtt://", "mqtt://broker:99999"])
def test_bad_urls_say_what_to_use(url: str) -> None:
    with pytest.raises(UserError, match="use mqtt://host:port"):
        parse_url(url)


ENV = {
    "MQTT_URL": "mqtts://b:8884",
    "MQTT_CA_FILE": "/ca.crt",
    "MQTT_BRIDGE_USERNAME": "bridge",
    "MQTT_BRIDGE_PASSWORD": "pw",
    "MQTT_GATEWAY_USERNAME": "gateway",
}


def test_env_url_ca_file_and_logins() -> None:
    env = ENV
    assert MqttEndpoint.from_env(env) == MqttEndpoint("b", 8884, True, "/ca.crt")
    assert MqttEndpoint.from_env(env, "mqtt://other").host == "other"
    assert login(env, "bridge") == ("bridge", "pw")
    assert login(env, "gateway") == ("gateway", None)
    assert login(env, "viewer") == (None, None)


def test_devices_and_bridge_read_the_same_endpoint() -> None:
    env = ENV
    endpoint = MqttEndpoint.from_env(env)
    devices = FleetMqttSettings.from_env(env)
    bridge = load_settings(env).mqtt
    for s in (devices, bridge):
        assert (s.host, s.port, s.tls, s.ca_file) == (
            endpoint.host, endpoint.port, endpoint.tls, endpoint.ca_file,
        )  # fmt: skip
    assert devices.gateway_user == "gateway" and bridge.username == "bridge"
    with pytest.raises(BrokerError, match="use mqtt://"):
        FleetMqttSettings.from_env(env, "http://x")
    with pytest.raises(UserError, match="use mqtt://"):
        load_settings({**env, "MQTT_URL": "http://x"})
