"""Generated credentials, created once and kept in the state folder so `.env` stays stable."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

MQTT_USERS = ("inspector", "bridge", "fleet", "gateway")
"""inspector, bridge read city/#; fleet writes only city/+/<client id>; gateway writes city/#."""


@dataclass(frozen=True)
class Credentials:
    mqtt: dict[str, str]
    s3_access_key: str
    s3_secret_key: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            mqtt={user: secrets.token_urlsafe(18) for user in MQTT_USERS},
            s3_access_key="cf" + secrets.token_hex(9),
            s3_secret_key=secrets.token_urlsafe(30),
        )

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        if path.is_file():
            data = json.loads(path.read_text())
            creds = cls(**data)
            if set(creds.mqtt) >= set(MQTT_USERS):
                return creds
        creds = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(creds), indent=2) + "\n")
        path.chmod(0o600)
        return creds
