from pathlib import Path

import pytest

from bridge.settings import load_settings
from cityconf.errors import UserError

ENV = {
    "MQTT_URL": "mqtt://127.0.0.1:1883",
    "MQTT_BRIDGE_USERNAME": "bridge",
    "MQTT_BRIDGE_PASSWORD": "pw",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
}


def test_defaults_are_safe() -> None:
    s = load_settings(ENV)
    assert s.producer["acks"] == "all" and s.producer["enable.idempotence"] is True
    assert s.producer["message.timeout.ms"] == 0
    assert s.producer["queue.buffering.max.messages"] >= s.mqtt.receive_maximum
    assert s.mqtt.filters == ("city/+/+",) and s.mqtt.session_expiry_s > 0


def test_share_group_prefixes_filters() -> None:
    s = load_settings(ENV, overrides={"share_group": "g", "client_id": "b-2"})
    assert s.mqtt.filters == ("$share/g/city/+/+",) and s.bridge_id == "b-2"


@pytest.mark.parametrize(
    ("yaml", "needle"),
    [
        ("mqtt: {receive_maximum: 0}", "mqtt.receive_maximum"),
        ("kafka: {producer: {acks: 1}}", "kafka.producer.acks"),
        ("routes: [{filter: 'city/#', topic: '{bad}'}]", "routes"),
        ("mqtt: {subscribe: ['$share/x/city/#']}", "mqtt.subscribe"),
        ("key: [", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, yaml: str, needle: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml)
    with pytest.raises(UserError) as err:
        load_settings(ENV, path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_a_benchmark_bridge_session_expires_soon(tmp_path: Path) -> None:
    """A killed benchmark's bridge session must not queue later runs' traffic for a day."""
    from drills.harness import SHORT_SESSION_S, short_session

    flag, path = short_session(tmp_path)
    assert flag == "--config"
    s = load_settings(ENV, config=Path(path))
    assert s.mqtt.session_expiry_s == SHORT_SESSION_S < load_settings(ENV).mqtt.session_expiry_s
    assert s.mqtt.filters == load_settings(ENV).mqtt.filters  # only the expiry changes
