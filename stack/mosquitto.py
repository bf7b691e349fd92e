"""Mosquitto: generated config, password file, ACL and client-id plugin; plain, TLS and
WebSocket listeners on 127.0.0.1; per-device accounts provisioned into the running broker."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from string import Template

import paho.mqtt.client as mqtt

from cityconf import mqtt as mqtt_limits
from cityconf.env import REPO_ROOT
from cityconf.errors import UserError
from cityconf.layout import Layout
from cityconf.mqtt import raise_nofile
from stack.accounts import (
    ANY_CLIENT_ID,
    CLIENT_ID_PREFIXES,
    GatewayAcl,
    PasswordFile,
    check_device_id,
    device_password,
    mosquitto_owner,
)
from stack.credentials import Credentials
from stack.install import APT_PACKAGES, ensure_apt, require_command
from stack.process import Port, Server
from stack.secrets import private_dir, write_private
from stack.settings import StackSettings
from stack.tls import ensure_certificates

TEMPLATE_DIR = REPO_ROOT / "mosquitto"
PLUGIN_SOURCE = TEMPLATE_DIR / "plugin" / "cityfleet_clientid.c"
PLUGIN_HEADERS = Path("/usr/include/mosquitto_plugin.h")
RESIGNAL_S = 2.0
"""How long to wait for a reload before asking for another (``Mosquitto._await_login``)."""
HOST = "127.0.0.1"
log = logging.getLogger(__name__)
BROKER_STATE_KEY = "MQTT_BROKER_STATE_DIR"
"""`.env` key naming the state folder of the broker whose accounts provisioning changes."""


def mosquitto_binary() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def plugin_binary(layout: Layout) -> Path:
    return layout.tools / "lib" / "cityfleet_clientid.so"


def build_plugin(layout: Layout) -> Path:
    """Compile the client-id plugin (mosquitto/plugin) once per source change."""
    target = plugin_binary(layout)
    if target.is_file() and target.stat().st_mtime >= PLUGIN_SOURCE.stat().st_mtime:
        return target
    # ensure_apt checks for a binary by path; the headers stand in for one here.
    ensure_apt(str(PLUGIN_HEADERS), ("mosquitto-dev", "libmosquitto-dev"))
    ensure_apt("gcc", ("gcc", "libc6-dev"))
    cc = require_command("gcc", "run: apt-get install -y gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    done = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(PLUGIN_SOURCE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise UserError(f"building the Mosquitto client-id plugin failed: {done.stderr[-400:]}")
    tmp.replace(target)  # atomic: a broker starting meanwhile never loads half a file
    return target


def blocked_parent(folder: Path) -> Path | None:
    """The first folder above ``folder`` that other users (the broker's ``mosquitto`` user)
    cannot pass through, or None. A broker that drops root must reach its files: it re-reads
    its config and password file on a reload, as itself."""
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def mqtt_connect(
    port: int,
    username: str | None,
    password: str | None,
    ca_file: Path | None = None,
    timeout: float = 3.0,
    host: str = HOST,
    client_id: str | None = None,
) -> mqtt.ReasonCode | None:
    """Connect once and return the broker's CONNACK reason code (None: no answer at all)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"cf-probe-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
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

    def __init__(
        self, layout: Layout, port: int, tls_port: int, ws_port: int, credentials: Credentials
    ) -> None:
        self.port = port
        self.tls_port = tls_port
        self.ws_port = ws_port
        self.credentials = credentials
        # The password file and ACL live in a folder the broker owns (it drops root) and nobody
        # else can read; the config keeps its path, which tells a running broker apart.
        self.home = layout.config / "mosquitto"
        self.config_file = layout.config / "mosquitto.conf"
        self.data_dir = layout.data / "mosquitto"
        self.acl_file = self.home / "acl"
        super().__init__(layout, str(self.config_file))

    # Looked up when first needed, not when built: on a fresh machine the `mosquitto` user
    # appears only once `install()` has run apt-get.
    @cached_property
    def owner(self) -> tuple[int, int] | None:
        return mosquitto_owner()

    @cached_property
    def passwords(self) -> PasswordFile:
        return PasswordFile(self.home / "passwd", self.owner)

    @cached_property
    def gateways(self) -> GatewayAcl:
        return GatewayAcl(self.home / "gateways.json", self.owner)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Mosquitto:
        """The broker ``env`` points at: ``MQTT_BROKER_STATE_DIR`` (a private broker's folder,
        in its ``env``) or the stack's state folder; its saved credentials."""
        settings = StackSettings.from_env(env)
        layout = settings.layout
        if env.get(BROKER_STATE_KEY):
            layout = Layout.at(Path(env[BROKER_STATE_KEY]), tools=layout.tools)
        creds_file = layout.config / "credentials.json"
        if not creds_file.is_file():
            raise UserError(
                f"no MQTT accounts at {layout.root}: start the stack with `make up` "
                f"(or set {BROKER_STATE_KEY} to the broker's state folder)"
            )
        creds = Credentials.load_or_create(creds_file)
        return cls(layout, settings.mqtt_port, settings.mqtt_tls_port, settings.mqtt_ws_port, creds)

    def ports(self) -> list[Port]:
        return [
            (self.port, "MQTT", "MQTT_PORT"),
            (self.tls_port, "MQTT TLS", "MQTT_TLS_PORT"),
            (self.ws_port, "MQTT WebSocket", "MQTT_WS_PORT"),
        ]

    @property
    def ca_file(self) -> Path:
        return self.layout.certs / "ca.crt"

    def installed(self) -> bool:
        binary = shutil.which("mosquitto") is not None or Path(mosquitto_binary()).is_file()
        return binary and plugin_binary(self.layout).is_file()

    def install(self) -> None:
        ensure_apt("mosquitto", APT_PACKAGES)
        build_plugin(self.layout)

    def config_text(self) -> str:
        """mosquitto.conf as this code writes it (certificates and plugin made if missing)."""
        ca, crt, key = ensure_certificates(self.layout.certs, self.owner)
        prefixes = " ".join(f"{user}={prefix}" for user, prefix in CLIENT_ID_PREFIXES.items())
        return Template((TEMPLATE_DIR / "mosquitto.conf.template").read_text()).substitute(
            passwd_file=self.passwords.path, acl_file=self.acl_file, data_dir=self.data_dir,
            user_line="user mosquitto" if self.owner else "",
            plugin_file=build_plugin(self.layout), any_clientid=" ".join(ANY_CLIENT_ID),
            clientid_prefix=prefixes,
            max_packet_size=mqtt_limits.MAX_PACKET_SIZE,
            max_queued_messages=mqtt_limits.MAX_QUEUED_MESSAGES,
            max_queued_bytes=mqtt_limits.MAX_QUEUED_BYTES,
            max_inflight_messages=mqtt_limits.MAX_INFLIGHT_MESSAGES,
            host=HOST, port=self.port, tls_port=self.tls_port, ws_port=self.ws_port,
            ca_file=ca, cert_file=crt, key_file=key,
        )  # fmt: skip

    def prepare(self) -> None:
        """Write certificates, the password file, the ACL and mosquitto.conf, all readable by
        the broker's user only (``mosquitto`` when started as root)."""
        if self.owner and (blocked := blocked_parent(self.layout.root)):
            raise UserError(
                f"Mosquitto drops root to the `mosquitto` user, which cannot reach "
                f"{self.layout.root}: {blocked} is closed to other users; run `chmod o+x "
                f"{blocked}` or set CITYFLEET_STATE_DIR to a folder it can reach"
            )
        private_dir(self.home, self.owner)
        private_dir(self.data_dir, self.owner)
        text = self.config_text()
        self.passwords.write_services(self.credentials)
        self._write_acl()
        write_private(self.config_file, text, self.owner)

    def _write_acl(self) -> None:
        fixed = (TEMPLATE_DIR / "acl").read_text()
        write_private(self.acl_file, self.gateways.render(fixed), self.owner)

    def outdated(self) -> bool:
        """Running with an older mosquitto.conf (listeners, plugin, limits, accounts): a
        reload cannot change those, a restart does."""
        running = self.pid is not None and self.config_file.is_file()
        return running and self.config_file.read_text() != self.config_text()

    def start(self, timeout: float | None = None) -> None:
        """Start, or reuse the running broker; an ``outdated`` one is restarted. Sessions and
        queued messages survive: a graceful stop saves them."""
        if self.outdated():
            log.info("Mosquitto's configuration changed: restarting it (sessions are kept)")
            self.stop()
        super().start(timeout)

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

    def provision(
        self,
        accounts: Mapping[str, str],
        gateways: Mapping[str, list[str]] | None = None,
        timeout: float = 30.0,
    ) -> list[str]:
        """Make the broker accept each username -> password (and let each gateway publish for
        its devices): add what the password file and ACL lack and have the running broker
        re-read them (SIGHUP). Returns the usernames added."""
        added = self.passwords.ensure(accounts.items())
        acl_changed = False
        if gateways:
            with self.gateways.locked():
                acl_changed = self.gateways.merge(gateways)
                if acl_changed:
                    self._write_acl()
        pid = self.pid
        if (added or acl_changed) and pid is not None:  # a stopped broker reads them at start
            os.kill(pid, signal.SIGHUP)
            if added:
                self._await_login(added[-1], accounts[added[-1]], timeout, pid)
            else:  # the broker reloads before it serves the next connection
                self._await_login("inspector", self.credentials.mqtt["inspector"], timeout, pid)
        return added

    def _await_login(self, username: str, password: str, timeout: float, pid: int) -> None:
        # A service account keeps its own client id rule: the probe uses a fresh one then.
        """The reload is asynchronous: wait until the broker accepts the last account added
        (it re-reads the whole file, so then it accepts them all).

        Another process provisioning at the same moment (two fleet shards) signals too, and
        Mosquitto's SIGHUP handler only sets a reload flag: two signals close together may make
        one reload, which may have read the file before this process wrote it (seen once in
        `make bench`'s two-shard run: the new account not accepted in 30 s, one "Reloading
        config." logged). So the signal is sent again every ``RESIGNAL_S`` until the account is
        accepted; re-reading the file is harmless.
        """
        deadline = time.monotonic() + timeout
        resignal = time.monotonic() + RESIGNAL_S
        while True:
            if time.monotonic() > resignal:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGHUP)
                resignal = time.monotonic() + RESIGNAL_S
            client_id = None if username in ANY_CLIENT_ID else username
            code = mqtt_connect(self.port, username, password, timeout=2.0, client_id=client_id)
            if code is not None and not code.is_failure:
                return
            if time.monotonic() > deadline:
                raise UserError(
                    f"Mosquitto on port {self.port} did not accept the new account {username} "
                    f"within {timeout:.0f} s of re-reading its password file; see {self.log_file}"
                )
            time.sleep(0.05)

    def endpoints(self) -> dict[str, str]:
        return {
            "mqtt": f"mqtt://{HOST}:{self.port}",
            "mqtts": f"mqtts://{HOST}:{self.tls_port}",
            "ws": f"ws://{HOST}:{self.ws_port}",
        }

    def env(self) -> dict[str, str]:
        creds = self.credentials.mqtt
        return {
            "MQTT_URL": f"mqtt://{HOST}:{self.port}",
            "MQTT_TLS_URL": f"mqtts://{HOST}:{self.tls_port}",
            "MQTT_WS_URL": f"ws://{HOST}:{self.ws_port}",
            "MQTT_HOST": HOST,
            "MQTT_PORT": str(self.port),
            "MQTT_TLS_PORT": str(self.tls_port),
            "MQTT_WS_PORT": str(self.ws_port),
            "MQTT_CA_FILE": str(self.ca_file),
            BROKER_STATE_KEY: str(self.layout.root),
            "MQTT_USERNAME": "inspector",
            "MQTT_PASSWORD": creds["inspector"],
            "MQTT_BRIDGE_USERNAME": "bridge",
            "MQTT_BRIDGE_PASSWORD": creds["bridge"],
            "MQTT_GATEWAY_USERNAME": "gateway",
            "MQTT_GATEWAY_PASSWORD": creds["gateway"],
            "MQTT_VIEWER_USERNAME": "viewer",
            "MQTT_VIEWER_PASSWORD": creds["viewer"],
        }


def device_logins(env: Mapping[str, str], device_ids: Iterable[str]) -> dict[str, str]:
    """device id -> MQTT password for each device, provisioning the broker ``env`` names (the
    username and client id are the device id). What `python -m stack device-credentials` and
    the fleet both call."""
    broker = Mosquitto.from_env(env)
    logins = {d: device_password(broker.credentials, check_device_id(d)) for d in device_ids}
    broker.provision(logins)
    return logins


def gateway_logins(env: Mapping[str, str], gateways: Mapping[str, list[str]]) -> dict[str, str]:
    """gateway id -> MQTT password, provisioning each gateway (username = client id = its id)
    to publish only for the devices listed for it, on the broker ``env`` names."""
    broker = Mosquitto.from_env(env)
    for devices in gateways.values():
        for device_id in devices:
            check_device_id(device_id)
    logins = {g: device_password(broker.credentials, check_device_id(g)) for g in gateways}
    broker.provision(logins, gateways)
    return logins
