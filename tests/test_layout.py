"""The layout of ``durable`` and ``durable_server``: no import cycles, no long modules.

Read from the source (nothing is imported), for every module of both packages:

* Imports form no cycle. Every import counts, at module level or inside a function: an import
  moved into a function to dodge a cycle still ties the two modules together. Imports under
  ``if TYPE_CHECKING:`` name types for annotations only; they are checked by a second test
  with an allow-list of its own.
* No module is longer than ``MAX_LINES``.

The allow-lists name what other work in progress still has to take apart. They only ever shrink: a cycle or a long module that is not listed
fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
PACKAGES: Final = ("durable", "durable_server")
MAX_LINES: Final = 600

# Cycles through imports that run. Each found cycle must lie within one of these sets.
KNOWN_CYCLES: Final[list[frozenset[str]]] = []

# Cycles that also count ``if TYPE_CHECKING:`` imports (annotations only).
KNOWN_TYPE_CYCLES: Final[list[frozenset[str]]] = [
    *KNOWN_CYCLES,
]

# Modules allowed over MAX_LINES, with their length when listed (they may only get shorter).
KNOWN_LONG: Final[dict[str, int]] = {}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """The ids of the nodes under ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            inside.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return inside


def _imported(name: str, is_package: bool, node: ast.Import | ast.ImportFrom,
              modules: dict[str, tuple[Path, bool]]) -> set[str]:
    """The modules of ours that one import statement in module ``name`` loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    if node.level:
        package = (name if is_package else name.rpartition(".")[0]).split(".")
        base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
    targets = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        targets.add(submodule if submodule in modules else base)
    return targets & modules.keys()


def _edges(source: str, name: str, is_package: bool, modules: dict[str, tuple[Path, bool]], *,
           annotations: bool) -> set[str]:
    """The modules of ours that module ``name`` imports, anywhere in ``source``."""
    tree = ast.parse(source)
    skip = set() if annotations else _type_checking_nodes(tree)
    edges: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
            edges |= _imported(name, is_package, node, modules)
    return edges - {name}


def _graph(*, annotations: bool) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (``annotations``: with TYPE_CHECKING ones)."""
    modules = _modules()
    return {name: _edges(path.read_text(encoding="utf-8"), name, is_package, modules,
                         annotations=annotations)
            for name, (path, is_package) in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _unexpected(cycles: list[frozenset[str]], known: list[frozenset[str]]) -> list[list[str]]:
    return [sorted(c) for c in cycles if not any(c <= allowed for allowed in known)]


def test_the_checker_sees_late_imports_and_cycles() -> None:
    modules = {name: (Path(), False) for name in ("p.a", "p.b", "p.c", "p.d")}
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import d\n"
              "def f():\n    from .b import x\n    from p import c\n")
    assert _edges(source, "p.a", False, modules, annotations=False) == {"p.b", "p.c"}
    assert _edges(source, "p.a", False, modules, annotations=True) == {"p.b", "p.c", "p.d"}
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert _cycles(graph) == [frozenset({"p.a", "p.b", "p.c"})]


def test_no_import_cycles() -> None:
    assert _unexpected(_cycles(_graph(annotations=False)), KNOWN_CYCLES) == []


def test_no_import_cycles_even_through_annotations() -> None:
    assert _unexpected(_cycles(_graph(annotations=True)), KNOWN_TYPE_CYCLES) == []


def test_no_module_is_long() -> None:
    lengths = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
               for path, _ in _modules().values()}
    too_long = {name: n for name, n in lengths.items()
                if n > MAX_LINES and n > KNOWN_LONG.get(name, 0)}
    assert too_long == {}
