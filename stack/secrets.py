"""Secret files are created owner-only: never world-readable, not even for a moment.

A file is written under a temporary name opened with mode 0600 (``O_CREAT | O_EXCL``, so the
mode applies whatever the umask), handed to its owner before it has any content, then renamed
over the old one. Writing first and chmodding afterwards would leave a window where anyone on
the machine can read it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def write_private(
    path: Path, text: str | bytes, owner: tuple[int, int] | None = None, append: bool = False
) -> None:
    """Replace ``path`` with ``text`` (mode 0600, owned by ``owner`` uid/gid when given).

    ``append`` keeps the current content and adds ``text`` after it (in the new file)."""
    data = text.encode() if isinstance(text, str) else text
    if append and path.is_file():
        data = path.read_bytes() + data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def private_dir(path: Path, owner: tuple[int, int] | None = None) -> Path:
    """``path`` as a folder only its owner can enter (created so, or tightened if it exists)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)  # an existing folder keeps its mode otherwise; empty or ours
    if owner is not None:
        os.chown(path, *owner)
    return path
