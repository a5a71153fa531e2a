"""The package's modules import each other without a circle (counting imports inside
functions too), so each can be read after the ones it uses."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "python" / "uec"


def _imports():
    modules = {f.stem for f in PKG.glob("*.py")}
    deps = {}
    for f in PKG.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.startswith("uec."):
                found.add(node.module.split(".")[1])
        deps[f.stem] = {m for m in found if m in modules and m != f.stem}
    return deps


def _cycle(deps):
    """A list of modules forming a circle, or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(deps[m]):
            if state.get(d) == "open":
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(deps):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_circle_between_the_package_modules():
    deps = _imports()
    assert len(deps) > 15 and "graph" in deps["estimator"]  # the parse found the imports
    assert _cycle(deps) is None, " -> ".join(_cycle(deps))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
