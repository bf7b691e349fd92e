"""The README stays true: its data contract is the one the code defines."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cityconf.env import REPO_ROOT
from contract.docs import render
from tests.readme import generated_section


def test_readme_contract_section_is_generated_from_the_contract() -> None:
    assert generated_section("contract") == render(), (
        "README is stale: run `python -m contract.docs`"
    )


def test_readme_quick_start_has_the_two_commands() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


# A path a README cites, in a link or in backticks: `bridge/app.py`, `tests/x/`, `scenarios/a.yaml`.
CITED = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)\)|`([\w.-]+(?:/[\w.-]+)+/?)`")
FILE_SUFFIXES = (".py", ".md", ".yml", ".yaml", ".json", ".toml", ".geojson", ".template", ".png")
# Paths that exist only at run time (state folder, generated reports) or on another machine.
RUNTIME_PREFIXES = (".cityfleet", "reports/", "/", "~", "s3", ".env", "benchmarks/results/")


def _cited_paths(readme) -> set[str]:
    text = readme.read_text(encoding="utf-8")
    paths = set()
    for link, code in CITED.findall(text):
        path = link or code
        if path.startswith(RUNTIME_PREFIXES) or "<" in path or "*" in path:
            continue
        if link or path.endswith("/") or path.endswith(FILE_SUFFIXES):
            paths.add(path)
    return paths


def _readmes() -> list[Path]:
    """Every README.md of the project, at any depth (not in state, venvs or node_modules)."""
    found = []
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        if "README.md" in files:
            found.append(Path(folder) / "README.md")
    return found


def test_every_path_a_readme_cites_exists() -> None:
    readmes = _readmes()
    assert REPO_ROOT / "scenarios" / "routes" / "README.md" in readmes  # nested ones too
    missing = [
        f"{readme.relative_to(REPO_ROOT)}: {path}"
        for readme in readmes
        for path in sorted(_cited_paths(readme))
        if not (REPO_ROOT / path).exists() and not (readme.parent / path).exists()
    ]
    assert not missing, "READMEs cite paths that do not exist:\n" + "\n".join(missing)


def test_the_citation_pattern_finds_links_and_backticked_paths(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "| bridge `kill -9` mid-stream | ... | `tests/bridge/test_kill.py`, `make chaos` |\n"
        "See [the routes](scenarios/routes/README.md), [a section](#docker), "
        "[a site](https://example.org/a.py), `.cityfleet/logs/x.log`, `reports/<time>.html`.\n",
        encoding="utf-8",
    )
    assert _cited_paths(readme) == {"tests/bridge/test_kill.py", "scenarios/routes/README.md"}
