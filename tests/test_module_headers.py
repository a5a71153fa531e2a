"""Every module of python/uec opens with a short header: at most 10 lines of module docstring.

A header says what the module is and holds; the reasoning and the measurements behind its rules
live in docs/design.md (or the guide, for what a user reads), not in the header (issue 28).
Lines are those of the docstring's text, as written (blank lines count). Pure file reading.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "python" / "uec"
MAX_LINES = 10


MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.is_file())


def _header_lines(path):
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    return 0 if doc is None else len(doc.strip("\n").splitlines())


def test_package_has_modules():
    assert MODULES, f"no modules found under {PACKAGE}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_header_is_short(path):
    n = _header_lines(path)
    assert n <= MAX_LINES, (
        f"{path.relative_to(ROOT)}: module docstring has {n} lines (at most {MAX_LINES}); "
        "move the reasoning to docs/design.md")
