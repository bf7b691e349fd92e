"""Browser fixtures (a pytest plugin, loaded by tests/conftest.py): headless Chromium pages.

``chromium_context`` is one headless Chromium for the whole session (Debian's package, driven by
Playwright); ``browser_page`` is a fresh page in it that records console errors and uncaught
exceptions and leaves a screenshot under ``<state folder>/artifacts/`` when the test ends,
whatever the outcome, so a failure can be looked at. The live map's tests and the report's
use the same two.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cityconf.env import load_env
from cityconf.layout import Layout

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from live.browser import WatchedPage


def artifacts_dir() -> Path:
    return Layout.from_env(load_env()).root / "artifacts"


@pytest.fixture(scope="session")
def chromium_context() -> Iterator[BrowserContext]:
    from cityconf.errors import UserError
    from live.browser import chromium

    try:
        with chromium() as context:
            yield context
    except UserError as exc:
        pytest.fail(f"headless Chromium could not start: {exc}", pytrace=False)


@pytest.fixture
def browser_page(
    chromium_context: BrowserContext, request: pytest.FixtureRequest
) -> Iterator[WatchedPage]:
    """A new page; its screenshot is kept as ``artifacts/<test name>.png``."""
    from live.browser import watch

    watched = watch(chromium_context)
    yield watched
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    watched.screenshot(artifacts_dir() / f"{name}.png")
    watched.page.close()
