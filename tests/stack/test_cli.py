"""`python -m stack` as a user runs it: plain one-line errors, and down/up keeps the data.

These run the CLI in a subprocess against a private state folder and private ports, never
against the shared stack (others' tests are using it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from confluent_kafka import Consumer, Producer

from cityconf.env import REPO_ROOT, read_env_file
from stack.process import free_port
from stack.settings import DEFAULT_PORTS
from tests.stack.mqtt_clients import Listener, publish, publisher

pytestmark = pytest.mark.integration


def _private_env(tmp_path: Path, tools: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["CITYFLEET_STATE_DIR"] = str(tmp_path / "state")
    env["CITYFLEET_ENV_FILE"] = str(tmp_path / ".env")
    if tools is not None:
        env["CITYFLEET_TOOLS_DIR"] = str(tools)
    for key in DEFAULT_PORTS:
        env[key] = str(free_port())
    return env


def _stack(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stack", *args],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_port_in_use_is_one_plain_line(tmp_path):
    env = _private_env(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env["MQTT_PORT"] = str(squatter.getsockname()[1])
        done = _stack(env, "up", "--quiet", timeout=60)
    assert done.returncode == 1
    line = _one_line_error(done)
    assert f"port {env['MQTT_PORT']} is already in use" in line and "MQTT_PORT" in line
    assert not list((tmp_path / "state" / "run").glob("*.pid"))  # nothing was started


def test_bad_port_setting_exits_2(tmp_path):
    env = _private_env(tmp_path)
    env["KAFKA_PORT"] = "ninety"
    done = _stack(env, "status", timeout=60)
    assert done.returncode == 2
    assert "KAFKA_PORT" in _one_line_error(done)


def test_status_of_a_stopped_stack_exits_1(tmp_path):
    done = _stack(_private_env(tmp_path), "status", timeout=60)
    assert done.returncode == 1
    assert "NO" in done.stdout and "Traceback" not in done.stderr


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A folder the `mosquitto` user can reach (a broker started as root drops to it; pytest's
    own temporary folders are 0700): execute-only, so nothing on the way can be listed."""
    folder = Path(tempfile.mkdtemp(prefix="cityfleet-cli-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_down_then_up_keeps_data(reachable_tmp, stack_env):
    tmp_path = reachable_tmp
    env = _private_env(tmp_path, tools=Path(stack_env["CITYFLEET_STATE_DIR"]) / "tools")
    first = _stack(env, "up", "--quiet")
    assert first.returncode == 0, first.stderr
    try:
        values = read_env_file(tmp_path / ".env")
        assert values["MQTT_PORT"] == env["MQTT_PORT"]
        run = uuid.uuid4().hex[:8]
        s3 = boto3.client(
            "s3", endpoint_url=values["S3_ENDPOINT_URL"], region_name=values["AWS_REGION"],
            aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        s3.put_object(Bucket=values["S3_BUCKET"], Key=f"lake/{run}.txt", Body=b"kept")
        producer = Producer({"bootstrap.servers": values["KAFKA_BOOTSTRAP_SERVERS"]})
        for i in range(20):
            producer.produce("vehicle_data", key=b"dev", value=f"{run}-{i}".encode())
        assert producer.flush(30) == 0
        gateway = publisher(int(values["MQTT_PORT"]), "gateway",
                            values["MQTT_GATEWAY_PASSWORD"], f"gw-{run}")  # fmt: skip
        publish(gateway, f"city/status/dev-{run}", b"online", retain=True)
        gateway.disconnect()

        down = _stack(env, "down")
        assert down.returncode == 0, down.stderr
        assert _stack(env, "status").returncode == 1
        again = _stack(env, "up", "--quiet")
        assert again.returncode == 0, again.stderr
        assert read_env_file(tmp_path / ".env") == values  # credentials are stable

        body = s3.get_object(Bucket=values["S3_BUCKET"], Key=f"lake/{run}.txt")["Body"].read()
        assert body == b"kept"
        listener = Listener(int(values["MQTT_PORT"]), "inspector", values["MQTT_PASSWORD"],
                            f"city/status/dev-{run}")  # fmt: skip
        assert listener.next() == (f"city/status/dev-{run}", b"online")
        listener.close()
        consumer = Consumer({"bootstrap.servers": values["KAFKA_BOOTSTRAP_SERVERS"],
                             "group.id": run, "auto.offset.reset": "earliest"})  # fmt: skip
        consumer.subscribe(["vehicle_data"])
        got = []
        while len(got) < 20 and (msg := consumer.poll(15)) is not None:
            got.append(msg.value().decode())
        consumer.close()
        assert got == [f"{run}-{i}" for i in range(20)]
    finally:
        _stack(env, "down")
