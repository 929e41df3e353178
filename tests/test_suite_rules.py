"""Rules the test suite itself must keep, checked over its source.

A time read at import (``LATER = now + 5 min`` at module level) is minutes old by the time a slow
machine reaches the test that uses it: one-time values then expire and the test fails for the wrong
reason, hiding what it was meant to show. Times are read inside the tests (or in function fixtures).

Free ports and fake clocks come from the one toolkit, tests/helpers (``helpers.ports``,
``helpers.clocks``): a module that defines its own again is a copy that drifts (there were seven
``free_port`` and five fake clocks before).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: Calls that read the clock (by their dotted name as written).
CLOCK_CALLS = frozenset(
    {
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.date.today",
        "time.time",
        "time.monotonic",
        "time.perf_counter",
        "time.time_ns",
        "time.monotonic_ns",
    }
)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: the module's and its classes' bodies (not functions, which run later)."""
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(stmt, ast.ClassDef):
            yield from _import_time_statements(stmt.body)
        elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
            yield stmt  # its test / items run at import
            for block in ("body", "orelse", "finalbody"):
                yield from _import_time_statements(getattr(stmt, block, []) or [])
            for handler in getattr(stmt, "handlers", []):
                yield from _import_time_statements(handler.body)
        else:
            yield stmt


def _calls_outside_functions(node: ast.AST) -> Iterator[ast.Call]:
    """Calls in ``node`` that run when it runs (lambda and function bodies run later)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(child, ast.Call):
            yield child
        yield from _calls_outside_functions(child)


def clock_reads_at_import(source: str) -> list[int]:
    """Line numbers of clock reads that run when the module is imported."""
    lines = set()
    for stmt in _import_time_statements(ast.parse(source).body):
        if isinstance(stmt, (ast.If, ast.Try, ast.With)):  # only its own test / items; bodies come apart
            parts: list[ast.AST] = [getattr(stmt, "test", None) or ast.Pass()]
            parts += [item.context_expr for item in getattr(stmt, "items", [])]
        else:
            parts = [stmt]
        for part in parts:
            lines.update(c.lineno for c in _calls_outside_functions(part) if _dotted(c.func) in CLOCK_CALLS)
    return sorted(lines)


def test_the_rule_sees_a_time_fixed_at_import() -> None:
    assert clock_reads_at_import("from datetime import datetime\nLATER = datetime.now() + 1\n") == [2]
    assert clock_reads_at_import("import time\nclass C:\n    T0 = time.time()\n") == [3]
    assert clock_reads_at_import("import time\ndef f():\n    return time.time()\n") == []
    assert clock_reads_at_import("import time\nf = lambda: time.time()\n") == []


#: Where the shared helpers live (the only place allowed to define them).
HELPERS = TESTS / "helpers"


def own_helpers(source: str) -> list[str]:
    """``line: name`` of every ``free_port``-like function or fake clock class the module defines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.lstrip("_") in {
            "free_port",
            "unused_port",
            "get_free_port",
        }:
            found.append(f"{node.lineno}: {node.name}")
        elif isinstance(node, ast.ClassDef) and node.name.endswith("Clock"):
            found.append(f"{node.lineno}: class {node.name}")
    return found


def test_the_rule_sees_an_own_free_port_or_clock() -> None:
    assert own_helpers("def free_port() -> int:\n    return 1\n") == ["1: free_port"]
    assert own_helpers("class Harness:\n    def _free_port(self):\n        pass\n") == ["2: _free_port"]
    assert own_helpers("class ShiftableClock:\n    pass\n") == ["1: class ShiftableClock"]
    assert own_helpers("from helpers.ports import free_port\nclock = FakeClock()\n") == []


def test_no_test_module_defines_its_own_free_port_or_clock() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{where}"
        for path in sorted(TESTS.rglob("*.py"))
        if HELPERS not in path.parents and "node_modules" not in path.parts
        for where in own_helpers(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use helpers.ports / helpers.clocks instead of: " + ", ".join(offenders)


#: The product side's one free-port helper (the servers it starts itself: redis-server, the smoke test).
PRODUCT_PORTS = TESTS.parent / "eid_gateway" / "ports.py"


def test_no_product_module_defines_its_own_free_port() -> None:
    root = TESTS.parent
    sources = [
        path
        for package in ("eid_gateway", "saml", "certs", "cardreader", "tr03110", "bench")
        for path in sorted((root / package).rglob("*.py"))
        if path != PRODUCT_PORTS
    ]
    assert len(sources) > 100 and "def free_port" in PRODUCT_PORTS.read_text(encoding="utf-8")
    offenders = [
        f"{path.relative_to(root)}:{where}"
        for path in sources
        for where in own_helpers(path.read_text(encoding="utf-8"))
        if "class " not in where
    ]
    assert offenders == [], "use eid_gateway.ports.free_port instead of: " + ", ".join(offenders)


def test_no_test_module_reads_the_clock_at_import() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in clock_reads_at_import(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "times fixed at import (read them inside the test): " + ", ".join(offenders)


def test_the_project_packages_are_imported_from_the_project_not_from_test_directories() -> None:
    """tests/certs and tests/cardreader have no __init__.py; with tests/ on sys.path (pyproject's
    pythonpath) they would be imported as namespace packages named ``certs`` and ``cardreader``, and only
    the editable finder's submodule mapping would hide it. Every top-level package of the project must be
    the project's own."""
    import importlib

    root = TESTS.parent
    for name in ("certs", "cardreader", "saml", "tr03110", "eid_gateway"):
        module = importlib.import_module(name)
        assert module.__file__ == str(root / name / "__init__.py"), (name, module.__file__)
