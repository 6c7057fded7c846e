"""The seams between the packages, read from the source (AST), so that they cannot erode unnoticed.

* ``adu_core`` (the library) imports neither the book's engine (``adu_book``) nor the benchmarks;
* ``adu_core.results`` (plain data) knows no methods, not even through the modules it imports;
* ``adu_core``'s modules import each other without cycles.

Every ``import`` statement counts, at module level or inside a function: a function-level import is still an arrow
(the library defers imports to keep ``adu --help`` light, not to hide a dependency). ``from package import name``
is an arrow to ``package.name`` when that is a module, else to ``package``. Importing a submodule also runs its
package's ``__init__``, but that is not counted as an arrow: every package's ``__init__`` would otherwise be in a
cycle with the submodules it exports. Imports under ``if TYPE_CHECKING:`` never run (annotations only) and are not
arrows. Imports by computed name (the method registry's ``importlib.import_module``) are not seen here; the
registry's own tests cover them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = "adu_core"
OUTSIDE_THE_LIBRARY = ("adu_book", "benchmarks")


def _modules(package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``package`` (a package is its ``__init__``)."""
    out = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules(LIBRARY)


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo += node.orelse
        else:
            todo += ast.iter_child_nodes(node)


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules (or packages) that ``module`` imports anywhere in its source, when it runs."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target)
    return found


@cache
def library_graph() -> dict[str, set[str]]:
    """adu_core module -> every module it imports (inside adu_core or not)."""
    known = set(MODULES)
    return {m: _imports(m, p, known) for m, p in MODULES.items()}


def test_the_graph_sees_the_library():
    graph = library_graph()
    assert {"adu_core.train", "adu_core.results", "adu_core.methods", "adu_core.data.registry"} <= set(graph)
    assert "adu_core.results" in graph["adu_core.train"]  # a module-level import
    assert "adu_core.multirun" in graph["adu_core.dispatch"]  # a function-level import
    assert "adu_core.methods" in graph["adu_core.methods.prompt"]  # `from . import register`
    assert "adu_core.data.download" in graph["adu_core.data.dataset"]  # at run time, inside a method
    assert "adu_core.data.dataset" not in graph["adu_core.data.download"]  # for annotations only


@pytest.mark.parametrize("outside", OUTSIDE_THE_LIBRARY)
def test_library_never_imports_the_book_engine_or_the_benchmarks(outside):
    arrows = {m: sorted(t for t in targets if t == outside or t.startswith(f"{outside}."))
              for m, targets in library_graph().items()}
    assert not {m: t for m, t in arrows.items() if t}, f"adu_core must not import {outside}"


def test_results_know_no_methods():
    graph = library_graph()
    reached, todo = set(), ["adu_core.results"]
    while todo:  # everything results.py loads, directly or through the modules it imports
        for target in graph.get(todo.pop(), ()):
            if target in graph and target not in reached:
                reached.add(target)
                todo.append(target)
    assert not {m for m in reached if m == "adu_core.methods" or m.startswith("adu_core.methods.")}, sorted(reached)


def test_library_has_no_import_cycles():
    graph = {m: {t for t in targets if t in MODULES and t != m} for m, targets in library_graph().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return path[path.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle in adu_core: " + " -> ".join(cycle))


def test_the_book_engine_and_the_benchmarks_import_the_library():
    for package in OUTSIDE_THE_LIBRARY:
        modules = _modules(package)
        known = set(modules) | set(MODULES)
        targets = {t for m, p in modules.items() for t in _imports(m, p, known)}
        assert any(t.startswith(f"{LIBRARY}.") for t in targets), package
    book_targets = {t for m, p in _modules("adu_book").items() for t in _imports(m, p, set())}
    assert not [t for t in book_targets if t.startswith("benchmarks")], "the book's engine does not time anything"


def test_each_package_names_its_public_surface():
    import adu_book
    import adu_core

    for package in (adu_core, adu_book):
        assert package.__doc__ and package.__all__
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
    assert "adu_book" in adu_core.__doc__ and "adu_core" in adu_book.__doc__
    assert "benchmarks" in adu_core.__doc__


def test_adu_help_says_which_package_is_which():
    proc = subprocess.run([sys.executable, "-m", "adu_core", "--help"], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "adu_core" in proc.stdout and "adu_book" in proc.stdout and "benchmarks" in proc.stdout
    assert "bench " not in proc.stdout.split("which package")[0]  # the benchmark is no library command
