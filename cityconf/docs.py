"""Render the configuration keys as Markdown: ``python -m cityconf.docs`` prints the README's
configuration table.

The README's table between ``<!-- config:start -->`` and ``<!-- config:end -->`` is generated
from ``cityconf.keys`` and a test checks that it matches, as the contract's tables are, so the
documented defaults cannot drift from the ones the code uses.
"""

from __future__ import annotations

from cityconf.keys import KEYS, Key


def _row(key: Key) -> str:
    return f"| `{key.name}` | {key.shown_default} | {key.used_by} | {key.doc} |"


def render() -> str:
    lines = [
        "| variable | default (local stack) | used by | meaning |",
        "|---|---|---|---|",
        *(_row(key) for key in KEYS),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
