"""What a package's modules import, read from their source (nothing is imported): the tests
that keep packages apart (``cityconf`` and ``spark`` ship without the rest) use it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


def top_level_imports(folder: Path) -> Iterator[tuple[Path, int, str]]:
    """``(file, line, top-level package)`` for every absolute import under ``folder``."""
    for source in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                yield source, node.lineno, name.split(".")[0]
