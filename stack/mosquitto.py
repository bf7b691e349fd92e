"""Mosquitto: generated config, password file and ACL; plain and TLS listeners on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from string import Template

import paho.mqtt.client as mqtt

from stack.credentials import MQTT_USERS, Credentials
from stack.env import REPO_ROOT
from stack.errors import StackError
from stack.install import APT_PACKAGES, ensure_apt
from stack.layout import Layout
from stack.limits import raise_nofile
from stack.process import Port, Server
from stack.tls import ensure_certificates

TEMPLATE_DIR = REPO_ROOT / "mosquitto"
MAX_QUEUED_MESSAGES = 2_000_000
HOST = "127.0.0.1"


def mosquitto_binary() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def mqtt_connect(
    port: int,
    username: str | None,
    password: str | None,
    ca_file: Path | None = None,
    timeout: float = 3.0,
    host: str = HOST,
) -> mqtt.ReasonCode | None:
    """Connect once and return the broker's CONNACK reason code (None: no answer at all)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"cf-probe-{uuid.uuid4().hex[:12]}"
    )
    if username is not None:
        client.username_pw_set(username, password)
    result: list[mqtt.ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, code, _p: result.append(code)
    try:
        if ca_file is not None:
            client.tls_set(ca_certs=str(ca_file))  # raises OSError when the CA file is missing
        client.connect(host, port, keepalive=10)
        deadline = time.monotonic() + timeout
        while not result and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    except (OSError, mqtt.WebsocketConnectionError, ValueError):
        return None
    finally:
        with contextlib.suppress(Exception):  # the probe must never raise
            client.disconnect()
    return result[0] if result else None


class Mosquitto(Server):
    """One Mosquitto broker with its own config, data, log and pid under ``layout``."""

    name = "mosquitto"

    def __init__(self, layout: Layout, port: int, tls_port: int, credentials: Credentials) -> None:
        self.port = port
        self.tls_port = tls_port
        self.credentials = credentials
        self.config_file = layout.config / "mosquitto.conf"
        self.data_dir = layout.data / "mosquitto"
        super().__init__(layout, str(self.config_file))

    def ports(self) -> list[Port]:
        return [(self.port, "MQTT", "MQTT_PORT"), (self.tls_port, "MQTT TLS", "MQTT_TLS_PORT")]

    @property
    def ca_file(self) -> Path:
        return self.layout.certs / "ca.crt"

    def installed(self) -> bool:
        return shutil.which("mosquitto") is not None or Path(mosquitto_binary()).is_file()

    def install(self) -> None:
        ensure_apt("mosquitto", APT_PACKAGES)

    def prepare(self, extra_conf: str = "") -> None:
        """Write certificates, the password file, the ACL and mosquitto.conf."""
        ca, crt, key = ensure_certificates(self.layout.certs)
        self.layout.config.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        passwd = self.layout.config / "mosquitto.passwd"
        plain = "".join(f"{u}:{self.credentials.mqtt[u]}\n" for u in MQTT_USERS)
        passwd.write_text(plain)
        passwd.chmod(0o600)
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        done = subprocess.run(
            [tool, "-U", str(passwd)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise StackError(f"mosquitto_passwd failed: {(done.stderr or done.stdout).strip()}")
        acl = self.layout.config / "mosquitto.acl"
        shutil.copyfile(TEMPLATE_DIR / "acl", acl)
        # As root, mosquitto drops to user "mosquitto", which cannot read our root-owned files.
        user_line = "user root" if os.geteuid() == 0 else ""
        text = Template((TEMPLATE_DIR / "mosquitto.conf.template").read_text()).substitute(
            passwd_file=passwd, acl_file=acl, user_line=user_line, data_dir=self.data_dir,
            max_queued_messages=MAX_QUEUED_MESSAGES, host=HOST, port=self.port,
            tls_port=self.tls_port, ca_file=ca, cert_file=crt, key_file=key,
        )  # fmt: skip
        self.config_file.write_text(text + extra_conf)

    def healthy(self) -> bool:
        code = mqtt_connect(self.port, "inspector", self.credentials.mqtt["inspector"], timeout=2.0)
        return code is not None and not code.is_failure

    def tls_healthy(self) -> bool:
        code = mqtt_connect(
            self.tls_port,
            "inspector",
            self.credentials.mqtt["inspector"],
            self.ca_file,
            timeout=2.0,
        )
        return code is not None and not code.is_failure

    def launch(self) -> None:
        self.prepare()
        raise_nofile()  # inherited by the broker: devices open 10,000 connections
        self.proc.launch([mosquitto_binary(), "-c", str(self.config_file)], cwd=self.data_dir)

    def endpoints(self) -> dict[str, str]:
        return {"mqtt": f"mqtt://{HOST}:{self.port}", "mqtts": f"mqtts://{HOST}:{self.tls_port}"}

    def env(self) -> dict[str, str]:
        creds = self.credentials.mqtt
        return {
            "MQTT_URL": f"mqtt://{HOST}:{self.port}",
            "MQTT_TLS_URL": f"mqtts://{HOST}:{self.tls_port}",
            "MQTT_HOST": HOST,
            "MQTT_PORT": str(self.port),
            "MQTT_TLS_PORT": str(self.tls_port),
            "MQTT_CA_FILE": str(self.ca_file),
            "MQTT_USERNAME": "inspector",
            "MQTT_PASSWORD": creds["inspector"],
            "MQTT_DEVICE_USERNAME": "fleet",
            "MQTT_DEVICE_PASSWORD": creds["fleet"],
            "MQTT_BRIDGE_USERNAME": "bridge",
            "MQTT_BRIDGE_PASSWORD": creds["bridge"],
            "MQTT_GATEWAY_USERNAME": "gateway",
            "MQTT_GATEWAY_PASSWORD": creds["gateway"],
        }
