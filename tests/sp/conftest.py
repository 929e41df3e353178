"""Real service-provider software in front of a real gateway (issue 15): Debian's Apache with
mod_auth_openidc as an OpenID Connect relying party; the Apache harness (:class:`ApacheRunner`,
:data:`HTTPD_BASE`, :func:`write_apache_config`) is shared with the SAML SPs (test_mod_auth_mellon.py,
shibboleth.py).

Each test starts its own ``apache2`` (own config file, ServerRoot, PidFile, logs, port on 127.0.0.1;
modules loaded from /usr/lib/apache2/modules) in the foreground and stops it at teardown; the system's
apache2 service is never used. The OIDC settings are the snippet of docs/integrations/, included
unchanged: the test only ``Define``s its placeholders. The protected location's handler is a CGI
script that echoes what mod_auth_openidc hands to the application.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from helpers.cli import service_add
from helpers.gateway import Gateway, StartGateway
from helpers.ports import bound_socket

APACHE = shutil.which("apache2") or "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
SNIPPET = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "mod_auth_openidc.conf"
#: Generous bounds: CI machines are up to 4x slower than a developer's.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

SERVICE_ID = "apache-oidc"
PROTECTED_PATH = "/secure"

#: Prints what the application behind the SP module receives: REMOTE_USER and the OIDC_CLAIM_*
#: (mod_auth_openidc) or MELLON_* (mod_auth_mellon) environment variables, one ``NAME=value`` a line.
ECHO_CGI = """#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\r\\n\\r\\n'
env | grep -E '^(OIDC_CLAIM_|MELLON_|REMOTE_USER=)' | sort
"""

#: What every test's Apache has; the SP module's ``LoadModule`` line and settings follow it. Filled
#: with :func:`httpd_values` (``server_name``, ``listen_port``, ``log_level``, ``extra_modules``) and the
#: SP's own values.
HTTPD_BASE = """\
# Written by tests/sp/conftest.py: one Apache for one test, nothing shared with the system's apache2.
ServerRoot "{root}"
ServerName {server_name}
Listen 127.0.0.1:{listen_port}
PidFile "{root}/httpd.pid"
DefaultRuntimeDir "{root}/run"
Mutex file:{root}/run default
ErrorLog "{root}/error.log"
LogLevel warn {log_level}
LogFormat "%h \\"%r\\" %>s" short
CustomLog "{root}/access.log" short
# Used only when started as root (children then run as www-data); ignored otherwise.
User www-data
Group www-data

LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule cgid_module {modules}/mod_cgid.so
{extra_modules}
StartServers 1
ScriptSock "{root}/run/cgid.sock"
DocumentRoot "{root}/htdocs"
"""

HTTPD_CONF = (
    HTTPD_BASE
    + """
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
Define EIDGW_ISSUER {issuer}
Define EIDGW_CLIENT_ID {client_id}
Define EIDGW_CLIENT_SECRET {client_secret}
Define EIDGW_REDIRECT_URI {redirect_uri}
Define EIDGW_PASSPHRASE {passphrase}
Define EIDGW_PROTECTED_PATH {protected_path}
Define EIDGW_DEFAULT_URL {default_url}
Include "{snippet}"

# The application: a CGI script at {protected_path}/claims.
ScriptAlias {protected_path}/claims "{root}/cgi-bin/claims"
"""
)


def httpd_values(
    root: Path,
    port: int,
    *,
    log_level: str = "",
    server_name: str | None = None,
    listen_port: int | None = None,
    extra_modules: tuple[tuple[str, str], ...] = (("authz_user_module", "mod_authz_user.so"),),
) -> dict[str, object]:
    """:data:`HTTPD_BASE`'s values: ``log_level`` per-module levels (e.g. ``auth_openidc:info``),
    ``server_name`` (default ``127.0.0.1:port``; a scheme for HTTPS), ``listen_port`` (default ``port``,
    another one while the service's own port is held) and ``extra_modules`` (module name, file in
    :data:`MODULES`; default mod_authz_user for ``Require valid-user``)."""
    return {
        "root": root,
        "port": port,
        "modules": MODULES,
        "log_level": log_level,
        "server_name": server_name or f"127.0.0.1:{port}",
        "listen_port": port if listen_port is None else listen_port,
        "extra_modules": "\n".join(f"LoadModule {name} {MODULES / file}" for name, file in extra_modules),
    }


def registration(service_id: str, redirect_uri: str, *, no_iss_in_errors: bool) -> tuple[str, str]:
    """The gateway's ``[[services]]`` table for the relying party as ``eid-gateway service add`` writes it
    (appended to the init config), and the client secret it printed once."""
    out, err = service_add(
        service_id,
        "Bürgerportal (Apache)",
        "given_names,family_names,date_of_birth,pseudonym",
        "--oidc-redirect-uri",
        redirect_uri,
        "--oidc-auth",
        "client_secret_basic",
        *(["--oidc-no-iss-in-errors"] if no_iss_in_errors else []),
        name_en="Citizen portal (Apache)",
    )
    [secret] = re.findall(r"client secret \(give it to the service[^)]*\): (\S+)", err + out)
    return out, secret


@dataclass
class ApacheSp:
    """One running apache2 with a service-provider module in front of ``gateway``, the application's
    CGI script at :data:`PROTECTED_PATH` / :attr:`script`."""

    origin: str
    root: Path
    gateway: Gateway

    script: ClassVar[str] = "claims"

    @property
    def protected_url(self) -> str:
        return f"{self.origin}{PROTECTED_PATH}/{self.script}"

    def error_log(self) -> str:
        """Apache's and the SP module's log, for assertion messages."""
        return apache_log(self.root)


@dataclass
class Apache(ApacheSp):
    """One running apache2 with mod_auth_openidc in front of ``gateway``."""

    service_id: str
    process: subprocess.Popen[bytes]

    @property
    def redirect_uri(self) -> str:
        return f"{self.origin}{PROTECTED_PATH}/redirect_uri"


StartApache = Callable[..., Awaitable[Apache]]


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def apache_log(root: Path) -> str:
    """What apache2 wrote before its ErrorLog was open, then its ErrorLog (the SP module's lines)."""
    logs = (root / "stderr.log", root / "error.log")
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in logs if p.exists())


def require_module(module: str, package: str) -> None:
    """Fail (not skip) when Debian's apache2 or the SP module is missing: `./dev test` installs them."""
    if not (os.access(APACHE, os.X_OK) and (MODULES / module).exists()):
        pytest.fail(f"apache2 / {package} are not installed: `./dev test` installs them")


async def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, bound: float, logs: Callable[[], str]
) -> None:
    """Wait (bounded by ``bound`` seconds) until ``ready()``; fail with ``logs()`` if ``process`` exits."""
    deadline = time.monotonic() + bound
    while not ready():
        assert process.poll() is None, f"{what} exited ({process.returncode}):\n{logs()}"
        assert time.monotonic() < deadline, f"{what} not ready after {bound} s:\n{logs()}"
        await asyncio.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within :data:`STOP_TIMEOUT`."""
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def check_apache_config(conf: Path, env: dict[str, str] | None = None) -> None:
    """``apache2 -t`` on ``conf``."""
    check = subprocess.run([APACHE, "-f", str(conf), "-t"], capture_output=True, timeout=START_TIMEOUT, env=env)
    assert check.returncode == 0, check.stderr.decode(errors="replace")


class ApacheRunner:
    """Runs each test's apache2 processes (and helpers such as shibd, see :meth:`track`) in the
    foreground, each Apache in its own ServerRoot; the ``apache_runner`` fixture stops them (last
    started first) and removes the roots at teardown."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.roots: list[Path] = []

    def new_root(self) -> Path:
        """A fresh ServerRoot. Not under pytest's tmp_path: its parents are 0700, and Apache's children
        (www-data when the suite runs as root) must reach the CGI script."""
        root = Path(tempfile.mkdtemp(prefix="eidgw-apache-"))
        self.roots.append(root)
        return root

    def track(self, process: subprocess.Popen[bytes]) -> None:
        """Stop ``process`` at teardown too (if it still runs then)."""
        self.processes.append(process)

    async def start(
        self, root: Path, conf: Path, port: int, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start apache2 with ``conf`` (and ``env``, default: this process's) and wait (bounded) until it
        listens on ``port``."""
        with open(root / "stderr.log", "ab") as stderr:  # what apache2 says before its ErrorLog is open
            process = subprocess.Popen(
                [APACHE, "-f", str(conf), "-DFOREGROUND"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env=env,
            )
        self.track(process)
        await wait_until(lambda: _listening(port), process, "apache2", START_TIMEOUT, lambda: apache_log(root))
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                stop_process(process)
        for root in self.roots:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def apache_runner() -> Iterator[ApacheRunner]:
    runner = ApacheRunner()
    yield runner
    runner.stop()


def write_apache_config(root: Path, httpd_conf: str) -> Path:
    """ServerRoot layout, the echo script and ``httpd.conf`` (checked with ``apache2 -t``)."""
    root.chmod(0o755)
    for sub in ("run", "htdocs", "cgi-bin"):
        (root / sub).mkdir(mode=0o755)
    script = root / "cgi-bin" / "claims"
    script.write_text(ECHO_CGI, encoding="utf-8")
    script.chmod(0o755)
    conf = root / "httpd.conf"
    conf.write_text(httpd_conf, encoding="utf-8")
    conf.chmod(0o600)  # it holds the client secret
    check_apache_config(conf)
    return conf


@pytest.fixture
async def start_apache(start_gateway: StartGateway, apache_runner: ApacheRunner) -> AsyncIterator[StartApache]:
    """Start a gateway with an OIDC client registered for mod_auth_openidc, then Apache in front of it.

    ``no_iss_in_errors``: registered with ``service add --oidc-no-iss-in-errors`` (the documented
    compatibility switch for mod_auth_openidc before 2.4.13).
    """
    require_module("mod_auth_openidc.so", "libapache2-mod-auth-openidc")

    async def start(*, no_iss_in_errors: bool) -> Apache:
        # the port stays bound here (so the gateway's own free-port pick cannot take it) until Apache starts
        with bound_socket() as holder:
            port = holder.getsockname()[1]
            origin = f"http://127.0.0.1:{port}"
            redirect_uri = f"{origin}{PROTECTED_PATH}/redirect_uri"
            block, secret = registration(SERVICE_ID, redirect_uri, no_iss_in_errors=no_iss_in_errors)
            gateway = await start_gateway(edit_config=lambda text: text + block)
            root = apache_runner.new_root()
            conf = write_apache_config(
                root,
                HTTPD_CONF.format(
                    **httpd_values(root, port, log_level="auth_openidc:info"),
                    snippet=SNIPPET,
                    issuer=gateway.origin,
                    client_id=SERVICE_ID,
                    client_secret=secret,
                    redirect_uri=redirect_uri,
                    passphrase=secrets.token_urlsafe(32),
                    protected_path=PROTECTED_PATH,
                    default_url=f"{origin}{PROTECTED_PATH}/claims",
                ),
            )
        process = await apache_runner.start(root, conf, port)
        return Apache(origin, root, gateway, SERVICE_ID, process)

    yield start
