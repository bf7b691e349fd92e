"""Generated credentials, created once and kept in the state folder so `.env` stays stable.

The file holds every service account's password, the S3 keys and the key device passwords are
derived from, so it is created owner-only (``stack.secrets``) and never copied into `.env`
whole: `.env` gets the logins each role needs, never the device key.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stack.secrets import write_private

MQTT_USERS = ("inspector", "bridge", "gateway", "viewer")
"""The service accounts; devices each have their own account (``stack.accounts``)."""


def _password() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Credentials:
    mqtt: dict[str, str]
    s3_access_key: str
    s3_secret_key: str
    device_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """Device passwords are HMACs of the device id under this key (``stack.accounts``)."""

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            mqtt={user: _password() for user in MQTT_USERS},
            s3_access_key="cf" + secrets.token_hex(9),
            s3_secret_key=secrets.token_urlsafe(30),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        """The saved credentials, with any account added since generated (and saved)."""
        if path.is_file():
            data = json.loads(path.read_text())
            saved = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
            if set(saved.mqtt) == set(MQTT_USERS) and "device_key" in data:
                return saved
            # Accounts added since (or removed, like the old shared "fleet") change; others stay.
            mqtt = {u: saved.mqtt.get(u) or _password() for u in MQTT_USERS}
            creds = cls(mqtt, saved.s3_access_key, saved.s3_secret_key, saved.device_key)
        else:
            creds = cls.generate()
        write_private(path, json.dumps(asdict(creds), indent=2) + "\n")
        return creds
