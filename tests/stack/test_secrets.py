"""Secrets are owner-only from the moment they exist: `.env`, the credentials file, the broker's
password file and config, and the TLS keys, even when the umask would allow more."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityconf.env import read_env_file
from stack.accounts import PasswordFile, device_password, hash_line, line_matches
from stack.credentials import Credentials
from stack.env import write_env_file
from stack.tls import ensure_certificates


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)  # anything written with the default mode would be world-readable
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every file this process creates, with its mode at the moment of creation."""
    seen: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path, flags, mode=0o777, *args, **kwargs):
        fd = real_open(path, flags, mode, *args, **kwargs)
        if flags & os.O_CREAT:
            seen.append((os.fspath(path), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    monkeypatch.setattr(os, "open", spy)
    return seen


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_secret_files_are_never_readable_by_others(
    tmp_path: Path, permissive_umask: None, created: list[tuple[str, int]]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MINE=kept\n")  # a file the user made: its content is kept, not its mode
    write_env_file(env_file, {"MQTT_PASSWORD": "secret"}, "header")
    creds = Credentials.load_or_create(tmp_path / "credentials.json")
    passwords = PasswordFile(tmp_path / "passwd")
    passwords.write_services(creds)
    passwords.ensure([("dev-1", device_password(creds, "dev-1"))])
    for path in (env_file, tmp_path / "credentials.json", passwords.path):
        assert _private(path), oct(path.stat().st_mode)
    assert read_env_file(env_file) == {"MINE": "kept", "MQTT_PASSWORD": "secret"}
    # Each was created (under a temporary name, then renamed) with its final mode: a write
    # followed by a chmod would not pass through os.open with O_CREAT here.
    names = {Path(path).name for path, _ in created}
    for secret in (env_file, tmp_path / "credentials.json", passwords.path):
        assert any(n.startswith(f".{secret.name}.") for n in names), (secret, names)
    for path, mode in created:
        if not path.endswith(".lock"):
            assert mode & 0o077 == 0, (path, oct(mode))


def test_tls_keys_are_private_and_certificates_public(tmp_path: Path, permissive_umask) -> None:
    ca, crt, key = ensure_certificates(tmp_path / "certs")
    assert _private(key) and _private(tmp_path / "certs" / "ca.key")
    assert stat.S_IMODE(ca.stat().st_mode) == 0o644 == stat.S_IMODE(crt.stat().st_mode)


def test_password_file_lines_are_mosquitto_pbkdf2_and_verify(tmp_path: Path) -> None:
    line = hash_line("dev-1", "pw")
    assert line.startswith("dev-1:$7$101$") and line.endswith("\n")
    assert line_matches(line, "pw") and not line_matches(line, "other")
    assert hash_line("dev-1", "pw") != line  # salted


def test_device_passwords_are_stable_per_device_and_key(tmp_path: Path) -> None:
    creds = Credentials.load_or_create(tmp_path / "credentials.json")
    again = Credentials.load_or_create(tmp_path / "credentials.json")
    assert device_password(creds, "a") == device_password(again, "a") != device_password(creds, "b")
    other = Credentials.generate()
    assert device_password(other, "a") != device_password(creds, "a")


def test_ensure_adds_only_what_the_file_does_not_accept(tmp_path: Path) -> None:
    passwords = PasswordFile(tmp_path / "passwd")
    assert passwords.ensure([("a", "1"), ("b", "2")]) == ["a", "b"]
    assert passwords.ensure([("a", "1"), ("b", "2")]) == []
    assert passwords.ensure([("a", "changed"), ("c", "3")]) == ["a", "c"]
    lines = passwords.lines()
    assert list(lines) == ["a", "b", "c"] and line_matches(lines["a"], "changed")
