"""The README stays true: its data contract is the one the code defines."""

from __future__ import annotations

import re

from contract.docs import render
from stack.env import REPO_ROOT


def test_readme_contract_section_is_generated_from_the_contract() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- contract:start -->\n(.*)<!-- contract:end -->", text, re.S)
    assert match, "README lacks the contract markers"
    assert match.group(1) == render(), "README is stale: run `python -m contract.docs`"


def test_readme_quick_start_has_the_two_commands() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
