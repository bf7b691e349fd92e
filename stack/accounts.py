"""MQTT accounts: who may log in to the broker, with which client id, and provisioning.

Every device is an account of its own: username = device id = client id, with a password
derived from the stack's device key (HMAC-SHA256 of the device id), so provisioning needs no
per-device secret store and is repeatable. The broker's ``password_file`` holds a PBKDF2-SHA512
hash per account (Mosquitto 2.0's ``$7$`` format, what ``mosquitto_passwd`` writes); a new
device is appended and the running broker re-reads the file on SIGHUP. The client-id plugin
(``mosquitto/plugin``) binds each account to its own client id, and the ACL lets a device
publish only under its own username (``pattern write city/+/%u``).

Service accounts (``stack.credentials.MQTT_USERS``) are few and fixed; see ``CLIENT_IDS``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from cityconf.errors import UserError
from stack.credentials import MQTT_USERS, Credentials
from stack.locks import exclusive
from stack.secrets import write_private

VIEWER_CLIENT_PREFIX = "cityfleet-live-"
"""The live map's viewers connect as ``cityfleet-live-<random>``: one connection per tab."""

ANY_CLIENT_ID = ("inspector", "bridge", "gateway")
"""Trusted service accounts that choose their client ids (several processes each; see README
"Security"). Every other account is bound: the viewer to ``VIEWER_CLIENT_PREFIX``, each device
and each gateway to its own username."""

CLIENT_ID_PREFIXES = {"viewer": VIEWER_CLIENT_PREFIX}

PBKDF2_ITERATIONS = 101
"""Mosquitto 2.0's own default (``mosquitto_passwd``): the broker hashes once per CONNECT, and
10,000 devices reconnecting at once must not stall it."""

_DEVICE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")


def check_device_id(device_id: str) -> str:
    """A device id usable as username, client id and topic level; else UserError (exit 2)."""
    if not _DEVICE_ID.fullmatch(device_id):
        raise UserError(
            f"device id {device_id!r}: use 1-128 letters, digits, '_' or '-' "
            "(no '/', '+', '#', spaces or dots; it is a topic level and a client id)",
            exit_code=2,
        )
    if device_id in MQTT_USERS or device_id.startswith(VIEWER_CLIENT_PREFIX):
        raise UserError(
            f"device id {device_id!r} is a service account's name; choose another", exit_code=2
        )
    return device_id


def device_password(credentials: Credentials, device_id: str) -> str:
    """The device's MQTT password: the same for the same device id and device key."""
    mac = hmac.new(credentials.device_key.encode(), device_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode()


def hash_line(username: str, password: str) -> str:
    """One ``password_file`` line, as ``mosquitto_passwd`` writes it (``$7$`` PBKDF2-SHA512)."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"{username}:$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}\n"


def line_matches(line: str, password: str) -> bool:
    """Whether a ``password_file`` line accepts ``password`` (a ``$7$`` line; else False)."""
    _user, _, hashed = line.rstrip("\n").partition(":")
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    mine = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(mine, digest)


class PasswordFile:
    """The broker's ``password_file``: service accounts first, then one line per device."""

    def __init__(self, path: Path, owner: tuple[int, int] | None = None) -> None:
        self.path = path
        self.owner = owner

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """One writer at a time (fleet shards and `device-credentials` may run together)."""
        return exclusive(self.path.with_name(self.path.name + ".lock"))

    def lines(self) -> dict[str, str]:
        """username -> its line, as the file has them now."""
        if not self.path.is_file():
            return {}
        out = {}
        for line in self.path.read_text().splitlines(keepends=True):
            user, sep, _ = line.partition(":")
            if sep:
                out[user] = line if line.endswith("\n") else line + "\n"
        return out

    def write_services(self, credentials: Credentials) -> None:
        """Rewrite the service accounts' lines with the current passwords; devices are kept."""
        with self.locked():
            keep = {u: line for u, line in self.lines().items() if u not in MQTT_USERS}
            service = [hash_line(u, credentials.mqtt[u]) for u in MQTT_USERS]
            write_private(self.path, "".join(service) + "".join(keep.values()), self.owner)

    def ensure(self, accounts: Iterable[tuple[str, str]]) -> list[str]:
        """Add (or fix) each (username, password) the file does not accept; returns those.

        Device passwords all derive from one key, so a rotated key shows in any line: one
        present line is verified, and all of them only if it fails (verifying 10,000 PBKDF2
        hashes at every fleet start would cost seconds)."""
        with self.locked():
            current = self.lines()
            wanted = list(accounts)
            present = [(u, pw) for u, pw in wanted if u in current]
            stale = bool(present) and not line_matches(current[present[0][0]], present[0][1])
            changed = [
                (user, password)
                for user, password in wanted
                if user not in current or (stale and not line_matches(current[user], password))
            ]
            if not changed:
                return []
            for user, password in changed:
                current[user] = hash_line(user, password)
            write_private(self.path, "".join(current.values()), self.owner)
            return [user for user, _ in changed]


class GatewayAcl:
    """Which devices each provisioned gateway may publish for, kept beside the password file
    (``gateways.json``) and rendered into the ACL after the fixed rules (``mosquitto/acl``).

    A gateway multiplexes many devices on one connection, so it cannot be bound to one topic
    like a device; it gets one ``topic write`` line per device it carries (and its own status
    topic, its will). Mosquitto checks a user's lines in turn, so a gateway's publish costs
    time linear in its devices: fine for the tens to thousands a gateway carries."""

    def __init__(self, path: Path, owner: tuple[int, int] | None = None) -> None:
        self.path = path
        self.owner = owner

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return exclusive(self.path.with_name(self.path.name + ".lock"))

    def load(self) -> dict[str, list[str]]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def merge(self, gateways: Mapping[str, list[str]]) -> bool:
        """Record each gateway's devices (replacing what it had); True if anything changed."""
        current = self.load()
        updated = {**current, **{gw: sorted(devices) for gw, devices in gateways.items()}}
        if updated == current:
            return False
        write_private(self.path, json.dumps(updated, indent=1) + "\n", self.owner)
        return True

    def render(self, fixed: str) -> str:
        sections = [
            f"\nuser {gw}\ntopic write city/status/{gw}\n"
            + "".join(f"topic write city/+/{device}\n" for device in devices)
            for gw, devices in sorted(self.load().items())
        ]
        head = "\n# Provisioned gateways (stack.accounts.GatewayAcl): each only for its devices.\n"
        return fixed + (head + "".join(sections) if sections else "")


def mosquitto_owner() -> tuple[int, int] | None:
    """(uid, gid) of the ``mosquitto`` user when we are root (the broker drops to it), else
    None: the broker runs as us and our files are already its own."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("mosquitto")
    except KeyError:
        raise UserError(
            "the broker must not run as root and there is no `mosquitto` user to drop to: "
            "run `apt-get install -y mosquitto` (it creates the user)"
        ) from None
    return entry.pw_uid, entry.pw_gid
