"""``cityconf`` stays importable by every component: it imports nothing of ours but ``contract``
and nothing outside the standard library."""

from __future__ import annotations

import sys

from cityconf.env import REPO_ROOT
from tests.imports import top_level_imports


def test_cityconf_imports_only_the_standard_library_and_contract() -> None:
    allowed = {"cityconf", "contract", "__future__", *sys.stdlib_module_names}
    offenders = [
        f"{source.name}:{line} imports {top}"
        for source, line, top in top_level_imports(REPO_ROOT / "cityconf")
        if top not in allowed
    ]
    assert not offenders, offenders
