"""``eid-gateway wallet-sim``'s command line: dispatched before the gateway's parser, sd-jwt imported only there."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from eid_gateway.cli import main
from eid_gateway.wallet_sim.cli import EXIT_OK, EXIT_USAGE, wallet_sim_main


def test_help_through_the_gateways_command() -> None:
    out = StringIO()
    assert main(["wallet-sim", "--help"], stdout=out, stderr=StringIO()) == EXIT_OK
    assert "--listen HOST:PORT" in out.getvalue() or "--listen LISTEN" in out.getvalue()
    assert "test PID provider" in out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nope", "--dir", "x"],
        ["--listen", "127.0.0.1:0", "--dir", "x"],
        ["--listen", "127.0.0.1:70000", "--dir", "x"],
        ["--listen", "127.0.0.1:8700"],  # --dir is required
    ],
)
def test_bad_arguments_are_a_usage_error(argv: list[str]) -> None:
    err = StringIO()
    assert wallet_sim_main(argv, StringIO(), err) == EXIT_USAGE
    assert "usage: eid-gateway wallet-sim" in err.getvalue()
    assert not (Path.cwd() / "x").exists()


def test_the_gateway_command_does_not_import_the_sd_jwt_library() -> None:
    code = "import sys, eid_gateway.cli; sys.exit(1 if 'sd_jwt' in sys.modules or 'jwcrypto' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_only_loopback_unless_asked(tmp_path: Path) -> None:
    err = StringIO()
    assert wallet_sim_main(["--listen", "0.0.0.0:8700", "--dir", str(tmp_path / "k")], StringIO(), err) == EXIT_USAGE
    assert "loopback" in err.getvalue() and not (tmp_path / "k").exists()


def test_the_test_wallet_is_independent_of_the_gateways_verifier() -> None:
    """The wallet checks the verifier against code the verifier did not write: nothing under
    eid_gateway.wallet_sim imports eid_gateway.wallet (not even indirectly), and only the command line
    (lazily) imports eid_gateway.wallet_sim."""
    from test_import_graph import import_graph, reachable

    graph = import_graph()
    sim = [m for m in graph if m == "eid_gateway.wallet_sim" or m.startswith("eid_gateway.wallet_sim.")]
    assert "eid_gateway.wallet_sim.wallet" in sim
    seen = reachable(graph, sim)
    assert not [m for m in seen if m == "eid_gateway.wallet" or m.startswith("eid_gateway.wallet.")]
    importers = {e.source for edges in graph.values() for e in edges if e.target.startswith("eid_gateway.wallet_sim")}
    assert importers - set(sim) == {"eid_gateway.cli"}
