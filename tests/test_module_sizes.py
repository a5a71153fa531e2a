"""No module is too long to read in one sitting (issue 28): every python/uec/**/*.py at most
MAX_PY_LINES lines, every C++/CUDA source and header under csrc/ at most MAX_CPP_LINES. Pure
file reading: the files are opened and their lines counted."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_PY_LINES = 500
MAX_CPP_LINES = 800
CPP_SUFFIXES = {".cpp", ".hpp", ".cu", ".cuh", ".h"}


def _lines(path):
    with open(path, encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def _files(base, suffixes):
    return sorted(p for p in (ROOT / base).rglob("*")
                  if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts)


def _too_long(files, limit):
    """``"path: N lines"`` for each file over ``limit`` lines."""
    out = []
    for p in files:
        n = _lines(p)
        if n > limit:
            out.append(f"{p.relative_to(ROOT).as_posix() if p.is_relative_to(ROOT) else p}: {n} lines")
    return out


def test_python_modules_at_most_500_lines():
    files = _files("python/uec", {".py"})
    assert len(files) > 20  # the package is there (a wrong path would pass vacuously)
    over = _too_long(files, MAX_PY_LINES)
    assert not over, f"over {MAX_PY_LINES} lines (split by stage, docs/design.md §2): {over}"


def test_cpp_sources_at_most_800_lines():
    files = _files("csrc", CPP_SUFFIXES)
    assert any(p.name == "knn.cpp" for p in files) and any(p.suffix == ".cu" for p in files)
    over = _too_long(files, MAX_CPP_LINES)
    assert not over, f"over {MAX_CPP_LINES} lines: {over}"


def test_a_file_over_the_limit_is_reported(tmp_path):
    short, long = tmp_path / "short.py", tmp_path / "long.py"
    short.write_text("a = 1\n" * 3, encoding="utf-8")
    long.write_text("a = 1\n" * 4, encoding="utf-8")
    assert _too_long([short, long], 3) == [f"{long}: 4 lines"]
