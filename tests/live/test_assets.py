"""The live map's npm packages: installed from the committed lockfile, once."""

from __future__ import annotations

import json

import pytest

import stack.install
from cityconf.env import REPO_ROOT, load_env
from cityconf.layout import Layout
from live.server import VENDOR_FILES
from stack.install import install_web_assets, web_assets_dir


def test_the_lockfile_pins_what_the_page_loads() -> None:
    wanted = json.loads((REPO_ROOT / "package.json").read_text())["dependencies"]
    locked = json.loads((REPO_ROOT / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert version[0].isdigit(), f"{name} must be pinned to one version, not {version}"
        assert locked[f"node_modules/{name}"]["version"] == version
        assert locked[f"node_modules/{name}"]["integrity"].startswith("sha512-")


@pytest.mark.slow
def test_npm_ci_installs_the_locked_versions_once(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = Layout.from_env(load_env()).ensure()
    modules = install_web_assets(layout)  # the first time on a machine: npm ci (~8 s)
    assert modules.parent == web_assets_dir(layout)
    for rel in VENDOR_FILES.values():
        assert (modules / rel).is_file(), rel
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())["packages"]
    for name in ("leaflet", "mqtt"):
        installed = json.loads((modules / name / "package.json").read_text())["version"]
        assert installed == lock[f"node_modules/{name}"]["version"]

    def no_npm(*args: object, **kwargs: object) -> str:
        raise AssertionError(f"npm ran again: {args}")

    monkeypatch.setattr(stack.install, "_run", no_npm)
    assert install_web_assets(layout) == modules
