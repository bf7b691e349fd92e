"""The HTML report in headless Chromium: load it until every chart is drawn, and screenshot it.

The browser test and ``python -m spark.report ... --screenshot`` (which made docs/report.png)
both load the report through ``load``, so the picture is what the test checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cityconf.errors import UserError

if TYPE_CHECKING:
    from playwright.sync_api import Page

DRAWN = "() => document.documentElement.dataset.charts !== undefined"
WIDTH = 1280


def load(page: Page, html: Path, timeout_s: float = 120.0) -> int:
    """Open the report file and wait until its script has drawn every chart; their number."""
    page.goto(html.resolve().as_uri())
    page.wait_for_function(DRAWN, timeout=timeout_s * 1000)
    return int(page.evaluate("() => document.documentElement.dataset.charts"))


def screenshot(html: Path, png: Path, height: int = 1400) -> Path:
    """The report's first ``height`` pixels (its title, the map and the first heat map)."""
    from live.browser import chromium, watch

    with chromium() as context:
        watched = watch(context)
        load(watched.page, html)
        if watched.errors:
            raise UserError(f"the report {html} logged errors: {'; '.join(watched.errors)}")
        png.parent.mkdir(parents=True, exist_ok=True)
        watched.page.screenshot(
            path=str(png),
            full_page=True,
            clip={"x": 0, "y": 0, "width": WIDTH, "height": height},
        )
    return png
