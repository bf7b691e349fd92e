"""Headless Chromium driven by Playwright: the live map's screenshots and the browser tests.

Debian's ``chromium`` package (installed once, like the servers' binaries) with Playwright's
Python client pointed at it: no browser download. One persistent context per run, on a fresh
profile folder; each page records its console errors and uncaught exceptions.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cityconf.errors import UserError
from stack.install import ensure_chromium

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Page

# --headless comes from Playwright's headless=True; these are the rest that work here.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1280, "height": 800}


@contextlib.contextmanager
def chromium() -> Iterator[BrowserContext]:
    """A headless Chromium on a fresh profile, closed (and the profile removed) on exit."""
    executable = ensure_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UserError(
            "the Python package playwright is not installed; run .venv/bin/pip install -e '.[dev]'"
        ) from None
    with (
        tempfile.TemporaryDirectory(prefix="cityfleet-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class WatchedPage:
    """A page, what it fetched, and what went wrong in it: console errors, uncaught exceptions."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for over HTTP (WebSockets are not requests here)."""

    def attribute(self, name: str) -> str:
        """An attribute of the page's root element (``<html data-...>``), "" when absent."""
        script = "(name) => document.documentElement.getAttribute(name)"
        return self.page.evaluate(script, name) or ""

    def number(self, name: str) -> int:
        return int(self.attribute(name) or 0)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path


def watch(context: BrowserContext) -> WatchedPage:
    """A new page in ``context`` recording its requests, console errors and uncaught exceptions."""
    page = context.new_page()
    watched = WatchedPage(page)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: watched.errors.append(f"page error: {exc}"))
    page.on("request", lambda request: watched.requests.append(request.url))
    return watched
