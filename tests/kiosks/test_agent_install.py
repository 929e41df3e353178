"""The kiosk agent as its own installable part: what it imports, its own distribution (kiosk-agent/)
installed alone in a fresh venv against pcscd + vpcd, and the systemd unit in docs/kiosks/."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from helpers.kiosk_agent import agent_env, agent_options
from helpers.ports import free_port

from .conftest import TOKENS, RunningGateway, eventually, make_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "docs" / "kiosks" / "eid-kiosk-agent.service"
AGENT_PROJECT = ROOT / "kiosk-agent"
#: the gateway's stack, which a kiosk PC does not need
GATEWAY_STACK = {
    "lxml",
    "xmlsec",
    "redis",
    "saml",
    "certs",
    "pydantic",
    "jinja2",
    "joserfc",
    "cryptography",
    "prometheus_client",
}
ENTRY = "import sys; from eid_gateway.entry import main; sys.argv[0] = 'eid-gateway'; sys.exit(main())"


def imported(code: str, *args: str) -> set[str]:
    """Top-level packages a fresh interpreter imports to run *code* (python -X importtime)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", out.stderr, re.M)
    assert names, "no import trace"
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize(
    "code,args",
    [
        (ENTRY, ("kiosk-agent", "--help")),
        (ENTRY, ("readers", "--help")),
        ("import sys; from cardreader.agent import main; sys.exit(main())", ("--help",)),
    ],
    ids=["eid-gateway kiosk-agent", "eid-gateway readers", "eid-kiosk-agent"],
)
def test_kiosk_commands_import_nothing_of_the_gateway_stack(code, args):
    mods = imported(code, *args)
    assert "cardreader" in mods and "smartcard" in mods
    assert not mods & GATEWAY_STACK, sorted(mods & GATEWAY_STACK)


def test_other_commands_still_reach_the_gateway_cli():
    mods = imported(ENTRY, "--help")
    assert {"eid_gateway", "pydantic", "saml"} <= mods  # the canary: the trace sees the gateway's stack


def test_the_agents_distribution_follows_the_gateways_version_and_bounds():
    """kiosk-agent/pyproject.toml: the same version, the agent's three dependencies with the gateway's
    lower bounds, the same command, and the packages it takes from this repository."""
    gateway = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    agent = tomllib.loads((AGENT_PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    meta, own = gateway["project"], agent["project"]
    declared = {
        re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower(): d
        for d in meta["dependencies"] + meta["optional-dependencies"]["kiosk"]
    }
    assert own["version"] == meta["version"] and own["license"] == meta["license"]
    assert sorted(own["dependencies"]) == sorted(declared[n] for n in ("aiohttp", "pyasn1", "pyscard"))
    assert (
        own["scripts"]
        == {"eid-kiosk-agent": "cardreader.agent:main"}
        == {k: v for k, v in meta["scripts"].items() if k == "eid-kiosk-agent"}
    )
    assert agent["tool"]["setuptools"]["package-dir"] == {"cardreader": "../cardreader", "tr03110": "../tr03110"}


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (package systemd)"
)
def test_systemd_unit_passes_systemd_analyze(tmp_path):
    agent = shutil.which("eid-kiosk-agent", path=str(Path(sys.executable).parent)) or "/bin/true"
    text = UNIT.read_text(encoding="utf-8")
    assert "/opt/eid-kiosk-agent/bin/eid-kiosk-agent" in text
    for needed in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "LoadCredential=kiosk-token:",
        "${CREDENTIALS_DIRECTORY}/kiosk-token",
        "KillSignal=SIGTERM",
    ):
        assert needed in text, needed
    unit = tmp_path / "eid-kiosk-agent.service"
    unit.write_text(text.replace("/opt/eid-kiosk-agent/bin/eid-kiosk-agent", agent), encoding="utf-8")
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys and bad values too, with a warning: no output at all is the bar
    assert verify.returncode == 0 and verify.stdout + verify.stderr == "", verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60
    )
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout).group(1))
    assert score <= 2.0, security.stdout[-3000:]  # systemd's "OK" band; 9.6 for a unit without hardening
    # the canary: a misspelt setting is reported
    bad = tmp_path / "bad.service"
    bad.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=strikt"), encoding="utf-8")
    warned = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert "strikt" in warned.stderr


@pytest.fixture
async def gateway():
    gw = RunningGateway(make_settings(heartbeat=1.0), free_port())  # plain http on loopback
    await gw.start()
    yield gw
    await gw.stop()


async def test_agent_alone_in_a_fresh_venv_reports_against_pcscd(gateway, pcscd, tmp_path):
    """`pip install` of the agent's own distribution (kiosk-agent/) in a fresh venv, as docs/kiosks.md
    says: no lxml, xmlsec, redis or the gateway itself installed, and eid-kiosk-agent reports the vpcd
    readers to the gateway."""
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(AGENT_PROJECT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = wheels.glob("eid_kiosk_agent-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    deps = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=900)
    if deps.returncode != 0 and re.search(
        r"No matching distribution|Could not find a version|NewConnectionError|"
        r"Temporary failure in name resolution",
        deps.stderr,
    ):
        pytest.skip("the package index is not reachable: " + deps.stderr.strip().splitlines()[-1])
    assert deps.returncode == 0, deps.stderr[-3000:]
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.lower()
    installed = {line.split("==")[0] for line in listed.splitlines()}
    assert {"eid-kiosk-agent", "aiohttp", "pyasn1", "pyscard"} <= installed
    unwanted = {"eid-gateway", "lxml", "xmlsec", "redis", "pydantic", "cryptography", "jinja2", "joserfc"}
    assert not installed & unwanted, sorted(installed)
    print(f"\nfresh kiosk venv: {len(installed)} distributions: {', '.join(sorted(installed))}")
    options = agent_options(gateway.base, "mitte-1", TOKENS["mitte-1"], tmp_path, heartbeat=1)
    proc = subprocess.Popen(
        [str(venv / "bin" / "eid-kiosk-agent"), *options], stderr=subprocess.PIPE, text=True, env=agent_env()
    )
    try:
        await eventually(lambda: gateway.registry.row("mitte-1")["status"] == "empty", timeout=60)
        proc.terminate()
        assert proc.wait(15) == 0
        await eventually(lambda: gateway.registry.row("mitte-1")["offline_reason"] == "stopped", timeout=5)
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
