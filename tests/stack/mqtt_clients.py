"""Small blocking paho helpers for the stack's smoke tests."""

from __future__ import annotations

import queue
import threading
import uuid

import paho.mqtt.client as mqtt


class Listener:
    """A subscriber collecting (topic, payload) pairs on a background paho loop."""

    def __init__(self, port: int, username: str, password: str, topic: str) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-listen-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def next(self, timeout: float = 10.0) -> tuple[str, bytes]:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher(
    port: int, username: str, password: str, client_id: str, ca_file: str | None = None
) -> mqtt.Client:
    """A connected client with its loop running; raises if the broker refuses it."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(username, password)
    if ca_file:
        client.tls_set(ca_certs=ca_file)
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10), "no CONNACK"
    return client


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    """QoS 1 publish, waiting for the PUBACK."""
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(10)
    assert info.is_published()
