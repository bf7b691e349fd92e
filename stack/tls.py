"""A local certificate authority and server certificate, made once with the openssl CLI.

The keys are written by openssl under umask 077, so they are owner-only from the first byte;
the server key is then handed to the broker's user (it drops root), the CA key never is.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cityconf.errors import UserError
from stack.install import require_command

_SERVER_EXT = """\
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def ensure_certificates(
    folder: Path, key_owner: tuple[int, int] | None = None
) -> tuple[Path, Path, Path]:
    """Return (ca.crt, server.crt, server.key), creating them on first use; the server key
    belongs to ``key_owner`` (uid, gid) when given."""
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    crt, key = folder / "server.crt", folder / "server.key"
    if not all(p.is_file() for p in (ca_crt, crt, key)):
        _make(folder, ca_crt, ca_key, crt, key)
    if key_owner is not None and (key.stat().st_uid, key.stat().st_gid) != key_owner:
        os.chown(key, *key_owner)
    return ca_crt, crt, key


def _make(folder: Path, ca_crt: Path, ca_key: Path, crt: Path, key: Path) -> None:
    openssl = require_command("openssl", "run: apt-get install -y openssl")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.ext").write_text(_SERVER_EXT)
    steps = [
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
         "-keyout", ca_key, "-out", ca_crt, "-subj", "/CN=CityFleet local CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", key,
         "-out", folder / "server.csr", "-subj", "/CN=localhost"],
        [openssl, "x509", "-req", "-in", folder / "server.csr", "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-sha256", "-days", "825", "-out", crt,
         "-extfile", folder / "server.ext"],
    ]  # fmt: skip
    for cmd in steps:
        done = subprocess.run(
            [str(c) for c in cmd], capture_output=True, text=True, check=False, umask=0o077
        )
        if done.returncode != 0:
            raise UserError(
                f"openssl failed making the MQTT TLS certificates: {done.stderr.strip()[-300:]}"
            )
    for public in (ca_crt, crt):  # certificates are public: every client reads the CA
        public.chmod(0o644)
