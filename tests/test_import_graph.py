"""The import graph of the project's packages (issue 14): no circles, and the layers point one way.

Built from the sources with ``ast`` (not by importing them: in the test process everything is imported
already): every ``import`` / ``from ... import`` at module level and inside functions, relative imports
resolved, and the package ``__init__`` modules an import runs on its way to a submodule. Imports under
``if TYPE_CHECKING:`` are for annotations only and never run, so they do not make a circle; the layer
rules count them too (a layer must not even name what sits above it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eid_gateway", "saml", "certs", "cardreader", "tr03110")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line, for the failure message
    typing_only: bool


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file under the packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement may load (``from a import b``: ``a.b`` or ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def module_edges(module: str, path: Path, modules: Mapping[str, Path]) -> list[Edge]:
    """Every project module ``module`` imports (and the package ``__init__`` modules on the way)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    is_package = path.name == "__init__.py"
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    edges: list[Edge] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = _imported_names(module, is_package, node)
            # ``from a import b`` loads the submodule a.b if there is one, else takes b from a
            targets = (
                {_resolve(n, modules) for n in names if n in modules} if isinstance(node, ast.ImportFrom) else set()
            )
            if not targets:
                targets = {_resolve(n, modules) for n in names}
            for target in targets:
                if target is None or target == module:
                    continue
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    own_ancestor = module == step or module.startswith(step + ".")
                    if step in modules and not own_ancestor:
                        edges.append(Edge(module, step, f"{where}:{node.lineno}", typing_only))
            return
        for inner in ast.iter_child_nodes(node):
            visit(inner, typing_only)

    visit(tree, False)
    return edges


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, list[Edge]]:
    modules = find_modules(root, packages)
    return {name: module_edges(name, path, modules) for name, path in modules.items()}


def circles(graph: Mapping[str, list[Edge]], *, typing_only: bool = False) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), over runtime imports
    (and annotation-only ones with ``typing_only``)."""
    succ = {m: sorted({e.target for e in edges if typing_only or not e.typing_only}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            connect(v)
    return found


def reachable(graph: Mapping[str, list[Edge]], start: Iterable[str]) -> dict[str, Edge | None]:
    """Every module reachable from ``start`` (all imports), with the edge that first reached it."""
    seen: dict[str, Edge | None] = {m: None for m in start}
    todo = list(seen)
    while todo:
        for edge in graph.get(todo.pop(), ()):
            if edge.target not in seen:
                seen[edge.target] = edge
                todo.append(edge.target)
    return seen


def _chain(seen: Mapping[str, Edge | None], module: str) -> str:
    steps = []
    edge = seen[module]
    while edge is not None:
        steps.append(f"{edge.source} -> {edge.target} ({edge.where})")
        edge = seen[edge.source]
    return "; ".join(reversed(steps))


def _describe(graph: Mapping[str, list[Edge]], component: list[str]) -> str:
    inside = set(component)
    lines = [
        f"{e.source} -> {e.target} ({e.where})"
        for m in component
        for e in graph[m]
        if e.target in inside and not e.typing_only
    ]
    return "circle " + " / ".join(component) + ":\n    " + "\n    ".join(sorted(set(lines)))


@pytest.fixture(scope="module")
def graph() -> dict[str, list[Edge]]:
    return import_graph()


# --- the checker itself ------------------------------------------------------------------------------------


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")


def test_every_kind_of_import_is_an_edge(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from pkg.sub import leaf\n",
            "pkg/sub/leaf.py": "X = 1\n",
            "pkg/top.py": "import pkg.other\n",
            "pkg/other.py": "def f():\n    from .sub.leaf import X\n    return X\n",
            "pkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import top\n"
            "else:\n    from pkg import other\n",
            "pkg/names.py": "from pkg.sub import leaf, missing\nfrom pkg import sub as s\n",
        },
    )
    graph = import_graph(tmp_path, ["pkg"])
    edges = {(e.source, e.target, e.typing_only) for m in graph for e in graph[m]}
    assert ("pkg.top", "pkg.other", False) in edges  # module level
    assert ("pkg.other", "pkg.sub.leaf", False) in edges  # inside a function, relative
    assert ("pkg.other", "pkg.sub", False) in edges  # the package __init__ on the way runs too
    assert ("pkg.typed", "pkg.top", True) in edges and ("pkg.typed", "pkg.other", False) in edges
    assert ("pkg.names", "pkg.sub.leaf", False) in edges and ("pkg.names", "pkg.sub", False) in edges
    assert ("pkg.sub", "pkg.sub.leaf", False) in edges  # a package importing its own submodule
    assert not any(source == target for source, target, _ in edges)


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "import pkg.c\n",
            "pkg/c.py": "def late():\n    import pkg.a\n",
            "pkg/d.py": "from typing import TYPE_CHECKING\nimport pkg.e\n",
            "pkg/e.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.d\n",
        },
    )
    graph = import_graph(tmp_path, ["pkg"])
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert circles(graph, typing_only=True) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.d", "pkg.e"]]


# --- the project's graph -------------------------------------------------------------------------------------


def test_the_graph_holds_the_imports_we_know(graph: dict[str, list[Edge]]) -> None:
    """Guards the checks below against a graph that lost its edges (they would then pass for nothing)."""
    edges = {(e.source, e.target) for m in graph for e in graph[m] if not e.typing_only}
    assert ("eid_gateway.app", "eid_gateway.backends.registry") in edges
    assert ("eid_gateway.flow", "eid_gateway.core.port") in edges
    assert ("eid_gateway.cli", "eid_gateway.service_add") in edges  # imported inside a function
    assert len(graph) > 100 and sum(map(len, graph.values())) > 500


def test_no_import_circles(graph: dict[str, list[Edge]]) -> None:
    found = circles(graph)
    assert not found, "\n".join(_describe(graph, c) for c in found)


def test_the_core_imports_nothing_from_frontends_backends_or_web(graph: dict[str, list[Edge]]) -> None:
    core = [m for m in graph if m == "eid_gateway.core" or m.startswith("eid_gateway.core.")]
    assert "eid_gateway.core.port" in core
    seen = reachable(graph, core)
    above = sorted(
        m
        for m in seen
        if m.split(".")[:2] in (["eid_gateway", "frontends"], ["eid_gateway", "backends"], ["eid_gateway", "web"])
    )
    assert not above, "\n".join(_chain(seen, m) for m in above)


@pytest.mark.parametrize("package", ["certs", "cardreader", "saml", "tr03110"])
def test_libraries_import_nothing_from_the_gateway(graph: dict[str, list[Edge]], package: str) -> None:
    own = [m for m in graph if m.split(".")[0] == package]
    assert own
    wrong = sorted(
        {
            f"{e.source} -> {e.target} ({e.where})"
            for m in own
            for e in graph[m]
            if e.target.split(".")[0] == "eid_gateway"
        }
    )
    assert not wrong, "\n".join(wrong)
