"""The README's generated sections, for the tests that keep them in step with their source."""

from __future__ import annotations

import re

from cityconf.env import REPO_ROOT


def generated_section(name: str) -> str:
    """What stands between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the README."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {name}:start -->\n(.*)<!-- {name}:end -->", text, re.S)
    assert match, f"README lacks the {name} markers"
    return match.group(1)
