"""The backend registry (issue 14): a kind is one line of ``BACKENDS``, and nothing else tests kind names.

A second line that reuses the simulator's parts under another name is enough for the config to accept
the kind, the app to build and mount it and the citizen page to link its test card client: nothing in
the config, the app or the flow knows the name.
"""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from eid_gateway.backends import registry
from eid_gateway.backends.registry import BACKENDS, UnknownBackend, backend_kind
from eid_gateway.config import parse_config, single_process_reasons
from eid_gateway.settings_base import ConfigError
from helpers.gateway import Browser, StartGateway, open_start_page

PACKAGE = Path(registry.__file__).resolve().parent.parent

#: Modules allowed to compare a value with a backend kind's name: the registry itself, and the
#: [eid_server] parser (backends/settings.py, formerly in config.py) while it reads the kind-specific keys
#: of "tr03130" / "saml" itself (until each kind's settings parser is a field of its registry line).
KIND_NAMES_ALLOWED = {"backends/registry.py", "config.py", "backends/settings.py"}


def _kind_tests(path: Path) -> list[str]:
    """Comparisons of something named ``*kind*`` with a backend kind's name (``==``, ``in (...)``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        strings = {
            sub.value
            for side in (node.left, *node.comparators)
            for sub in ast.walk(side)
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
        }
        if strings & set(BACKENDS) and "kind" in ast.unparse(node):
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_tests_a_backend_kind_by_name() -> None:
    checked = [p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).as_posix() not in KIND_NAMES_ALLOWED]
    assert any(p.name == "flow.py" for p in checked) and any(p.name == "app.py" for p in checked)
    found = [line for path in checked for line in _kind_tests(path)]
    assert not found, "\n".join(found)


def test_the_kind_test_finder_finds_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        'if config.eid_server.kind == "simulator" or es.kind in ("saml", "x"):\n    pass\n'
        'if mode == "simulator":\n    pass\n'
    )
    assert [line.split(": ")[1] for line in _kind_tests(sample)] == [
        "config.eid_server.kind == 'simulator'",
        "es.kind in ('saml', 'x')",
    ]  # ``mode`` is not a kind


def test_every_line_is_complete() -> None:
    assert list(BACKENDS) == ["simulator", "tr03130", "saml", "embedded-paos"]
    for name, kind in BACKENDS.items():
        assert kind.name == name and callable(kind.create)
        assert not (kind.remote and kind.mount is not None), "a remote eID-Server is not mounted in the app"
        assert not (kind.remote and kind.test_facility)
    assert backend_kind("saml") is BACKENDS["saml"]
    with pytest.raises(UnknownBackend):
        backend_kind("paos")


def test_an_unknown_kind_is_refused_naming_every_registered_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"eid_server": {"kind": "paos"}}, tmp_path)
    line = next(e for e in caught.value.errors if "kind" in e and "eid_server" in e)
    assert all(f'"{name}"' in line for name in BACKENDS), line


def test_single_process_reasons_come_from_the_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eid_gateway.config import DemoConfig

    demo = DemoConfig(enabled=False, key=None, entity_id="x", service_id=None)
    assert single_process_reasons("tr03130", simulator=None, demo=demo) == []
    assert any("embedded-paos" in r for r in single_process_reasons("embedded-paos", simulator=None, demo=demo))
    lone = replace(BACKENDS["tr03130"], name="lone", single_process_reason=lambda sections: "lone keeps state")
    monkeypatch.setitem(BACKENDS, "lone", lone)
    assert single_process_reasons("lone", simulator=None, demo=demo) == ["lone keeps state"]


async def test_a_new_kind_is_one_registry_line(
    monkeypatch: pytest.MonkeyPatch, start_gateway: StartGateway, browser: Browser
) -> None:
    twin = replace(BACKENDS["simulator"], name="simulator-twin")
    monkeypatch.setitem(BACKENDS, "simulator-twin", twin)
    gw = await start_gateway(edit_config=lambda text: _set_kind(text, "simulator-twin"))
    assert gw.config.eid_server.kind == "simulator-twin"
    ready = await browser.get(gw.url("/readyz"))
    checks: dict[str, Any] = json.loads(ready.text)
    assert ready.status == 200 and checks["eid_server"] == "ok", checks  # getServerInfo via the mounted twin
    start = await open_start_page(browser, gw)
    assert gw.config.simulator is not None
    assert any(link.startswith(gw.config.simulator.prefix + "/client?tcTokenURL=") for link in start.links()), (
        start.links()
    )


async def test_a_kind_without_a_test_client_links_none(
    monkeypatch: pytest.MonkeyPatch, start_gateway: StartGateway, browser: Browser
) -> None:
    """The same twin without the capability: the flow links no test card client (it has no name to test)."""
    quiet = replace(BACKENDS["simulator"], name="quiet-twin", test_client_path=lambda config: None)
    monkeypatch.setitem(BACKENDS, "quiet-twin", quiet)
    gw = await start_gateway(edit_config=lambda text: _set_kind(text, "quiet-twin"))
    start = await open_start_page(browser, gw)
    assert gw.config.simulator is not None
    assert not any(gw.config.simulator.prefix in link for link in start.links()), start.links()


def _set_kind(text: str, kind: str) -> str:
    assert text.count('\nkind = "simulator"\n') == 1
    return text.replace('\nkind = "simulator"\n', f'\nkind = "{kind}"\n')
