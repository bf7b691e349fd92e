"""A local certificate authority and server certificate, made once with the openssl CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stack.errors import StackError
from stack.install import require_command

_SERVER_EXT = """\
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def ensure_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """Return (ca.crt, server.crt, server.key), creating them on first use."""
    ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
    crt, key = folder / "server.crt", folder / "server.key"
    if all(p.is_file() for p in (ca_crt, crt, key)):
        return ca_crt, crt, key
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
        done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(
                f"openssl failed making the MQTT TLS certificates: {done.stderr.strip()[-300:]}"
            )
    for secret in (ca_key, key):
        secret.chmod(0o600)
    return ca_crt, crt, key
