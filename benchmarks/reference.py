"""Reference figures measured in the same run: what Mosquitto itself can carry."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Mapping

PAYLOAD = b'{"device_id":"ref","seq":1,' + b'"pad":"' + b"x" * 300 + b'"}'
"""About 350 bytes, like a vehicle reading."""


def _broker(env: Mapping[str, str]) -> tuple[str, str]:
    return env.get("MQTT_HOST", "127.0.0.1"), env.get("MQTT_PORT", "1883")


def mosquitto_raw_rate(env: Mapping[str, str], n_messages: int, qos: int) -> float:
    """Messages/s delivered from ``mosquitto_pub -l`` to ``mosquitto_sub`` through the broker.

    Counted at the subscriber (``-C n``), the clock running from the publisher's start to the
    subscriber's exit after the n-th message.
    """
    host, port = _broker(env)
    topic = f"city/bench/ref-{uuid.uuid4().hex[:8]}"
    auth_sub = ["-u", env["MQTT_USERNAME"], "-P", env["MQTT_PASSWORD"]]
    auth_pub = ["-u", env["MQTT_GATEWAY_USERNAME"], "-P", env["MQTT_GATEWAY_PASSWORD"]]
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", host, "-p", port, *auth_sub, "-t", topic, "-q", str(qos),
         "-C", str(n_messages), "-W", "120"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)  # let the subscription settle before the first publish
    start = time.perf_counter()
    # ``mosquitto_pub -l`` disconnects at end of input, dropping QoS 1 messages still
    # queued; so its stdin stays open until the subscriber has counted every message.
    pub = subprocess.Popen(
        ["mosquitto_pub", "-h", host, "-p", port, *auth_pub, "-t", topic, "-q", str(qos),
         "-l"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert pub.stdin is not None
    pub.stdin.write((PAYLOAD + b"\n") * n_messages)
    pub.stdin.flush()
    rc = sub.wait(timeout=180)
    elapsed = time.perf_counter() - start
    pub.stdin.close()
    pub.wait(timeout=30)
    if rc != 0:
        raise RuntimeError(f"mosquitto_sub did not receive {n_messages} messages (rc {rc})")
    return n_messages / elapsed
