"""Mosquitto through its ACLs with the generated users, plain and TLS."""

from __future__ import annotations

import uuid

import pytest

from stack.mosquitto import device_logins, mqtt_connect
from tests.stack.mqtt_clients import Listener, publish, publisher

pytestmark = pytest.mark.integration


def _id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def test_device_publishes_over_tls_and_inspector_and_bridge_receive(stack_env):
    device = _id()
    port, tls_port = int(stack_env["MQTT_PORT"]), int(stack_env["MQTT_TLS_PORT"])
    inspector = Listener(
        port, stack_env["MQTT_USERNAME"], stack_env["MQTT_PASSWORD"], f"city/+/{device}"
    )
    bridge = Listener(
        port, stack_env["MQTT_BRIDGE_USERNAME"], stack_env["MQTT_BRIDGE_PASSWORD"], "city/#"
    )
    password = device_logins(stack_env, [device])[device]
    client = publisher(tls_port, device, password, device, ca_file=stack_env["MQTT_CA_FILE"])
    try:
        publish(client, f"city/gps/{device}", b'{"seq": 1}')
        assert inspector.next() == (f"city/gps/{device}", b'{"seq": 1}')
        while (got := bridge.next())[0] != f"city/gps/{device}":  # others publish too
            pass
        assert got == (f"city/gps/{device}", b'{"seq": 1}')
    finally:
        client.disconnect()
        inspector.close()
        bridge.close()


def test_device_cannot_publish_to_another_devices_topic(stack_env):
    device, other = _id(), _id()
    inspector = Listener(
        int(stack_env["MQTT_PORT"]),
        stack_env["MQTT_USERNAME"],
        stack_env["MQTT_PASSWORD"],
        "city/+/+",
    )
    password = device_logins(stack_env, [device])[device]
    client = publisher(int(stack_env["MQTT_PORT"]), device, password, device)
    try:
        publish(client, f"city/gps/{other}", b"forged")  # acknowledged, then dropped
        publish(client, f"city/gps/{device}", b"sentinel")
        # Mosquitto delivers one connection's messages in order: once the sentinel is in,
        # the forged message would have arrived before it.
        seen = []
        while (msg := inspector.next())[1] != b"sentinel" or device not in msg[0]:
            seen.append(msg)
        assert (f"city/gps/{other}", b"forged") not in seen
    finally:
        client.disconnect()
        inspector.close()


def test_gateway_may_publish_for_any_device(stack_env):
    device = _id()
    port = int(stack_env["MQTT_PORT"])
    inspector = Listener(
        port, stack_env["MQTT_USERNAME"], stack_env["MQTT_PASSWORD"], f"city/+/{device}"
    )
    client = publisher(
        port, stack_env["MQTT_GATEWAY_USERNAME"], stack_env["MQTT_GATEWAY_PASSWORD"], _id()
    )
    try:
        publish(client, f"city/weather/{device}", b"junk")
        assert inspector.next() == (f"city/weather/{device}", b"junk")
    finally:
        client.disconnect()
        inspector.close()


def test_anonymous_and_wrong_password_are_refused(stack_env):
    port = int(stack_env["MQTT_PORT"])
    anonymous = mqtt_connect(port, None, None)
    assert anonymous is not None and anonymous.is_failure
    wrong = mqtt_connect(port, stack_env["MQTT_USERNAME"], "not-the-password")
    assert wrong is not None and wrong.is_failure
    good = mqtt_connect(int(stack_env["MQTT_TLS_PORT"]), stack_env["MQTT_USERNAME"],
                        stack_env["MQTT_PASSWORD"], ca_file=stack_env["MQTT_CA_FILE"])  # fmt: skip
    assert good is not None and not good.is_failure


def test_private_broker_has_the_same_acl(private_mosquitto):
    broker = private_mosquitto()
    device = _id()
    inspector = Listener(broker.port, "inspector", broker.password("inspector"), "city/#")
    password = broker.device_logins([device])[device]
    client = publisher(broker.tls_port, device, password, device, ca_file=str(broker.ca_file))
    try:
        publish(client, f"city/gps/{_id()}", b"forged")
        publish(client, f"city/gps/{device}", b"ok")
        assert inspector.next() == (f"city/gps/{device}", b"ok")
    finally:
        client.disconnect()
        inspector.close()
