"""Every file the documentation points at exists, and every ``docs/design.md §N`` names a section.

Scanned: the comments and docstrings of python/uec, csrc, tests and benchmarks, and the text of
README.md and docs/**/*.md. Checked:

- repository paths (``docs/results/quality.md``, ``benchmarks/suite.py``, ``tests/test_x.py``,
  ``csrc/cpu/epochs.cpp``, ``python/uec/merge.py``; in csrc also ``cpu/lanes.cpp``-style paths
  relative to csrc/) name a file or folder that exists;
- bare ``NAME.md`` names name a markdown file of the repository;
- markdown links to relative targets resolve from the page that holds them (the ``#anchor`` is
  not checked);
- ``design.md §N`` (and ``§N`` inside docs/design.md) names a numbered section of docs/design.md.

Not flagged: ``../shared`` paths (data and notes beside a development checkout, which a user's
checkout does not have; the code that reads them says so) and generated outputs (``build/``,
``benchmarks/out/``). Pure file reading: no import of uec, no subprocess.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"
SELF = Path(__file__).resolve()  # its docstring names patterns, not files

CODE_DIRS = ("python/uec", "csrc", "tests", "benchmarks")
CODE_SUFFIXES = {".py", ".hpp", ".cpp", ".h", ".cu", ".cuh"}
TOP_DIRS = ("docs", "benchmarks", "tests", "csrc", "python", ".ci")
GENERATED = ("build/", "benchmarks/out/", "_skbuild/", "dist/")

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I)
# a path from the repository root: docs/..., benchmarks/..., ...
_ROOT_PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./*-]*[\w/])" % "|".join(re.escape(d) for d in TOP_DIRS))
# a path below csrc/ as the C++ sources write it: cpu/lanes.cpp, core/edges.hpp, cuda/driver.cu
_CSRC_PATH = re.compile(r"(?<![\w./-])((?:core|cpu|cuda)/\w+\.(?:hpp|cpp|cu|h))\b")
# a bare markdown file name: DESIGN.md, README.md, quality.md
_MD_NAME = re.compile(r"(?<![\w./-])([\w-]+(?:\.[\w-]+)*\.md)\b")
# markdown links and images: [text](target)
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_DESIGN_REF = re.compile(r"design\.md[`'\"*_)\]]*[\s,]*(?:§\s*[\d.]*\d[\s,–-]*(?:and\s+|or\s+)?)+")
_CANDIDATES = (_ROOT_PATH, _CSRC_PATH, _MD_NAME, re.compile(r"design\.md"))
_SECTION = re.compile(r"§\s*(\d+(?:\.\d+)*)")
_HEADING = re.compile(r"^#{1,6}\s+§(\d+(?:\.\d+)*)\b", re.M)


def _rel(path):
    return path.relative_to(ROOT).as_posix()


def _code_files():
    out = []
    for d in CODE_DIRS:
        base = ROOT / d
        if base.is_dir():
            out += [p for p in sorted(base.rglob("*"))
                    if p.suffix in CODE_SUFFIXES and p.is_file() and "__pycache__" not in p.parts
                    and p != SELF]
    return out


def _doc_files():
    files = [ROOT / "README.md"]
    if (ROOT / "docs").is_dir():
        files += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in files if p.is_file()]


def _python_text(source):
    """Comments and string-expression statements (docstrings) of a Python source, as
    (line, text) pairs."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out.append((tok.start[0], tok.string))
    except (tokenize.TokenError, SyntaxError):
        pass
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return out
    for node in ast.walk(tree):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            out.append((node.lineno, node.value.value))
    return out


_CPP_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def _cpp_text(source):
    """Comments of a C++/CUDA source, as (line, text) pairs."""
    return [(source.count("\n", 0, m.start()) + 1, m.group(0))
            for m in _CPP_COMMENT.finditer(source)]


def _texts():
    """(file, line, text, kind) for every comment/docstring of the code and every page."""
    out = []
    for path in _code_files():
        source = path.read_text(encoding="utf-8", errors="replace")
        if not any(p.search(source) for p in _CANDIDATES):
            continue  # nothing that looks like a reference: no need to tokenize
        pieces = _python_text(source) if path.suffix == ".py" else _cpp_text(source)
        out += [(path, line, text, "code") for line, text in pieces]
    for path in _doc_files():
        out.append((path, 1, path.read_text(encoding="utf-8", errors="replace"), "doc"))
    return out


TEXTS = _texts()


def _skipped(target):
    t = target.lstrip("./") if target.startswith("./") else target
    return "../shared" in target or target.startswith("shared/") or t.startswith(GENERATED)


def _md_names():
    """Names of the markdown files of the repository (generated and hidden folders left out)."""
    names = set()
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel = Path(dirpath).relative_to(ROOT).as_posix() + "/"
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"
                       and not (rel.lstrip("./") + d + "/").startswith(GENERATED)]
        names.update(f for f in filenames if f.endswith(".md"))
    return names


def _exists(target):
    """Whether a path (relative to ROOT) exists; a glob (``tests/test_core_*.py``) must match."""
    if "*" in target:
        return any(ROOT.glob(target))
    return (ROOT / target).exists()


def _where(path, line, text, offset):
    return f"{_rel(path)}:{line + text.count(chr(10), 0, offset)}"


def _missing_paths():
    bad = []
    md_names = _md_names()
    for path, line, text, kind in TEXTS:
        clean = _URL.sub(lambda m: " " * len(m.group(0)), text)
        for m in _ROOT_PATH.finditer(clean):
            target = m.group(1).rstrip(".")
            if _skipped(target) or clean[max(0, m.start() - 3):m.start()] == "../":
                continue
            if not _exists(target):
                bad.append(f"{_where(path, line, clean, m.start())}: {target}")
        if path.suffix in {".hpp", ".cpp", ".h", ".cu", ".cuh"}:
            for m in _CSRC_PATH.finditer(clean):
                if not (ROOT / "csrc" / m.group(1)).exists():
                    bad.append(f"{_where(path, line, clean, m.start())}: {m.group(1)}")
        for m in _MD_NAME.finditer(clean):
            name = m.group(1)
            if name not in md_names:
                bad.append(f"{_where(path, line, clean, m.start())}: {name}")
        if kind == "doc":
            for m in _MD_LINK.finditer(clean):
                target = m.group(1).split("#", 1)[0]
                if not target or ":" in target or _skipped(target):
                    continue
                if not (path.parent / target).exists():
                    bad.append(f"{_where(path, line, clean, m.start())}: link {m.group(1)}")
    return bad


def _design_sections():
    if not DESIGN.is_file():
        return set()
    return set(_HEADING.findall(DESIGN.read_text(encoding="utf-8")))


def _bad_sections():
    sections = _design_sections()
    bad = []
    for path, line, text, _ in TEXTS:
        for m in _DESIGN_REF.finditer(text):
            for n in _SECTION.findall(m.group(0)):
                if n not in sections:
                    bad.append(f"{_where(path, line, text, m.start())}: design.md §{n}")
    if DESIGN.is_file():
        body = DESIGN.read_text(encoding="utf-8")
        for m in _SECTION.finditer(body):
            if m.group(1) not in sections:
                bad.append(f"{_where(DESIGN, 1, body, m.start())}: §{m.group(1)}")
    return bad


def test_design_doc_has_numbered_sections():
    assert DESIGN.is_file(), "docs/design.md is missing"
    sections = _design_sections()
    top = sorted(int(s) for s in sections if "." not in s)
    assert top and top == list(range(1, len(top) + 1)), f"sections §1..§N expected, got {top}"


def test_referenced_files_exist():
    bad = _missing_paths()
    assert not bad, "references to files that are not in the repository:\n" + "\n".join(bad)


def test_design_sections_exist():
    bad = _bad_sections()
    assert not bad, "references to sections docs/design.md does not have:\n" + "\n".join(bad)


@pytest.mark.parametrize("text, expect", [
    ("see docs/design.md §4 and §5.", ["4", "5"]),
    ("(docs/design.md §3)", ["3"]),
    ("`docs/design.md` §2, §7", ["2", "7"]),
])
def test_design_reference_pattern(text, expect):
    found = [n for m in _DESIGN_REF.finditer(text) for n in _SECTION.findall(m.group(0))]
    assert found == expect
