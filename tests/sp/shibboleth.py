"""Shibboleth SP 3 (Debian's shibd and mod_shib) in front of a real gateway (issue 15).

Each test gets its own shibd (own config dir, listener socket, pid file and log, in the foreground) and
its own apache2 (own config, ServerRoot, port, HTTPS with a throwaway certificate) loading mod_shib
pointed at that shibd by ``ShibConfig``; the system's shibd and apache2 services are never used, and
nothing is written under /etc, /var or /run. Both processes get ``SHIBSP_CFGDIR`` (relative paths of
shibboleth2.xml resolve in ``$SHIBSP_CFGDIR/shibboleth`` instead of /etc/shibboleth) and
``SHIBSP_LOGGING`` (the logging setup used before shibboleth2.xml is read). The SAML settings are
docs/integrations/shibboleth/: the ``<ApplicationDefaults>`` excerpt goes into the test's
shibboleth2.xml with only its placeholders filled, attribute-map.xml is copied as is; the other files
of the config dir are Debian's /etc/shibboleth ones. The protected location's handler is a CGI script
that prints its environment: what Shibboleth hands the application.

The gateway knows the SP only from what ``eid-gateway service add`` writes from Shibboleth's own
metadata: shibd and Apache first run without the gateway (another port, the service's URLs) to serve
/Shibboleth.sso/Metadata, then the gateway starts with that registration, then shibd and Apache start
again with the gateway's metadata.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import aiohttp
import pytest

from helpers.cli import service_add
from helpers.gateway import Browser, StartGateway
from helpers.ports import bound_socket
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem

from .conftest import (
    APACHE,
    HTTPD_BASE,
    MODULES,
    PROTECTED_PATH,
    ApacheRunner,
    ApacheSp,
    check_apache_config,
    httpd_values,
    stop_process,
    wait_until,
)

SHIBD = shutil.which("shibd") or "/usr/sbin/shibd"
#: The shipped configuration (templates, security-policy.xml, protocols.xml, attribute-policy.xml).
SYSTEM_CONFIG = Path("/etc/shibboleth")
MOD_SHIB = MODULES / "mod_shib.so"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "shibboleth"
EXCERPT = DOCS / "shibboleth2.xml"
ATTRIBUTE_MAP = DOCS / "attribute-map.xml"
#: shibd loads its metadata, keys and schemas before it opens its socket: slow on a slow machine.
SHIBD_START_TIMEOUT = 30.0

SERVICE_ID = "apache-shibboleth"

#: The shipped SPConfig around the excerpt, with this test's own listener, loggers and paths.
SHIBBOLETH2_XML = """\
<SPConfig xmlns="urn:mace:shibboleth:3.0:native:sp:config"
    xmlns:conf="urn:mace:shibboleth:3.0:native:sp:config"
    clockSkew="180">
    <!-- Written by tests/sp/shibboleth.py: one shibd for one test, nothing shared with the system's. -->
    <OutOfProcess logger="shibd.logger"/>
    <InProcess logger="native.logger"/>
    <UnixListener address="{root}/run/shibd.sock"/>

{excerpt}

    <SecurityPolicyProvider type="XML" validate="true" path="security-policy.xml"/>
    <ProtocolProvider type="XML" validate="true" reloadChanges="false" path="protocols.xml"/>
</SPConfig>
"""

#: Both processes log to their standard error (shibd's into shibd.log, mod_shib's into Apache's).
LOGGER = """\
log4j.rootCategory={level}, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{{%H:%M:%S}} %p %c %x: %m%n
"""

#: Prints what the application behind mod_shib receives: its whole environment, ``NAME=value`` a line.
ECHO_CGI = """#!/bin/sh
printf 'Content-Type: text/plain; charset=utf-8\\r\\n\\r\\n'
env | sort
"""

HTTPD_CONF = (
    HTTPD_BASE
    + """
UseCanonicalName On
SSLEngine on
SSLCertificateFile "{root}/tls.crt"
SSLCertificateKeyFile "{root}/tls.key"
SSLSessionCache "shmcb:{root}/run/ssl_scache(512000)"

# mod_shib: this test's shibboleth2.xml (its UnixListener is this test's shibd)
ShibConfig "{config_dir}/shibboleth2.xml"
<Location /Shibboleth.sso>
    SetHandler shib
</Location>
<Location {protected_path}>
    AuthType shibboleth
    ShibRequestSetting requireSession true
    Require valid-user
</Location>

# The application: a CGI script at {protected_path}/attributes.
ScriptAlias {protected_path}/attributes "{root}/cgi-bin/attributes"
"""
)


#: What the test's service may receive: the names, dates and places the application is shown.
ATTRIBUTES = "given_names,family_names,date_of_birth,place_of_birth,address,pseudonym"


def registration(service_id: str, sp_metadata: Path, cert_dir: Path) -> str:
    """The gateway's ``[[services]]`` table for the SP, as ``eid-gateway service add`` writes it from
    Shibboleth's own metadata (certificates into ``cert_dir``)."""
    block, _ = service_add(
        service_id,
        "Bürgerportal (Shibboleth)",
        ATTRIBUTES,
        "--saml-metadata",
        str(sp_metadata),
        "--cert-dir",
        str(cert_dir),
        name_en="Citizen portal (Shibboleth)",
    )
    return block


@dataclass
class ShibbolethSp(ApacheSp):
    """One running shibd and the apache2 with mod_shib in front of ``gateway``."""

    script: ClassVar[str] = "attributes"

    service_id: str
    shibd: subprocess.Popen[bytes]
    apache: subprocess.Popen[bytes]

    @property
    def config_dir(self) -> Path:
        return self.root / "shibboleth"

    @property
    def entity_id(self) -> str:
        return f"{self.origin}/shibboleth"

    @property
    def acs_url(self) -> str:
        return f"{self.origin}/Shibboleth.sso/SAML2/POST"

    def logs(self) -> str:
        """shibd's, Apache's and mod_shib's logs, for assertion messages."""
        names = ("shibd.log", "stderr.log", "error.log")
        return "".join(
            f"--- {n}\n" + (self.root / n).read_text(encoding="utf-8", errors="replace")
            for n in names
            if (self.root / n).exists()
        )


StartShibboleth = Callable[..., Awaitable[ShibbolethSp]]


def fill(template: str, values: dict[str, str]) -> str:
    """The ``{{NAME}}`` placeholders of a docs/integrations file, every one of them filled."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    assert "{{" not in template, f"unfilled placeholder in {template[template.index('{{') :][:40]}"
    return template


def _write_pair(config_dir: Path, stem: str, pair: KeyPair) -> None:
    key, cert = key_pair_to_pem(pair)
    (config_dir / f"{stem}-key.pem").write_bytes(key)
    (config_dir / f"{stem}-key.pem").chmod(0o600)
    (config_dir / f"{stem}-cert.pem").write_bytes(cert)


def shibboleth_environment(root: Path, logger: str) -> dict[str, str]:
    """What shibd and mod_shib need to stay inside ``root``: the config dir and the early logging."""
    return {**os.environ, "SHIBSP_CFGDIR": str(root), "SHIBSP_LOGGING": str(root / "shibboleth" / logger)}


def make_config_dir(root: Path) -> Path:
    """``root/shibboleth``: Debian's shipped files, this test's loggers and the SP's two key pairs."""
    config_dir = root / "shibboleth"
    shutil.copytree(SYSTEM_CONFIG, config_dir)
    (config_dir / "shibd.logger").write_text(LOGGER.format(level="INFO"), encoding="utf-8")
    (config_dir / "native.logger").write_text(LOGGER.format(level="WARN"), encoding="utf-8")
    _write_pair(config_dir, "sp-signing", generate_key_pair("rsa-3072", "Shibboleth SP signing", 30))
    _write_pair(config_dir, "sp-encrypt", generate_key_pair("rsa-3072", "Shibboleth SP encryption", 30))
    return config_dir


def write_shibboleth_config(root: Path, sp_entity_id: str, gateway_entity_id: str, metadata: bytes | None) -> Path:
    """shibboleth2.xml (the docs excerpt filled in) and the docs attribute map into the config dir, with
    the gateway's metadata once there is a gateway; then checked with ``shibd -t``."""
    config_dir = root / "shibboleth"
    shutil.copyfile(ATTRIBUTE_MAP, config_dir / "attribute-map.xml")
    excerpt = fill(
        EXCERPT.read_text(encoding="utf-8"),
        {
            "SP_ENTITY_ID": sp_entity_id,
            "GATEWAY_ENTITY_ID": gateway_entity_id,
            "SUPPORT_CONTACT": "it-service@example.de",
        },
    )
    conf = config_dir / "shibboleth2.xml"
    conf.write_text(SHIBBOLETH2_XML.format(root=root, excerpt=excerpt), encoding="utf-8")
    if metadata is None:
        return conf  # the SP's self-description only: shibd reports the missing IdP metadata, and runs
    (config_dir / "eid-gateway-metadata.xml").write_bytes(metadata)
    check = subprocess.run(
        [SHIBD, "-t", "-c", str(conf)],
        capture_output=True,
        timeout=SHIBD_START_TIMEOUT,
        env=shibboleth_environment(root, "shibd.logger"),
    )
    output = (check.stdout + check.stderr).decode(errors="replace")
    assert check.returncode == 0 and " ERROR " not in output and " CRIT " not in output, output
    return conf


def make_apache_root(root: Path) -> None:
    """ServerRoot layout, a throwaway TLS certificate and the echo script."""
    for sub in ("htdocs", "cgi-bin"):
        (root / sub).mkdir(mode=0o755)
    key, cert = key_pair_to_pem(generate_key_pair("ec-p256", "127.0.0.1", 1))
    (root / "tls.key").write_bytes(key)
    (root / "tls.key").chmod(0o600)
    (root / "tls.crt").write_bytes(cert)
    script = root / "cgi-bin" / "attributes"
    script.write_text(ECHO_CGI, encoding="utf-8")
    script.chmod(0o755)


def write_apache_config(root: Path, port: int, listen_port: int) -> Path:
    """``httpd.conf`` for the service at ``https://127.0.0.1:port``, listening on ``listen_port``
    (``apache2 -t``)."""
    conf = root / "httpd.conf"
    conf.write_text(
        HTTPD_CONF.format(
            **httpd_values(
                root,
                port,
                server_name=f"https://127.0.0.1:{port}",
                listen_port=listen_port,
                extra_modules=(
                    ("socache_shmcb_module", "mod_socache_shmcb.so"),
                    ("ssl_module", "mod_ssl.so"),
                    ("mod_shib", MOD_SHIB.name),
                ),
            ),
            config_dir=root / "shibboleth",
            protected_path=PROTECTED_PATH,
        ),
        encoding="utf-8",
    )
    check_apache_config(conf, env=shibboleth_environment(root, "native.logger"))
    return conf


def _accepting(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        return s.connect_ex(str(path)) == 0


async def _launch(
    root: Path, port: int, runner: ApacheRunner
) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """shibd (in the foreground, until its socket accepts), then apache2 (until ``port`` accepts)."""
    conf = root / "shibboleth" / "shibboleth2.xml"
    socket_path = root / "run" / "shibd.sock"
    socket_path.unlink(missing_ok=True)
    with open(root / "shibd.log", "ab") as log:
        shibd = subprocess.Popen(
            [SHIBD, "-F", "-f", "-c", str(conf), "-p", str(root / "run" / "shibd.pid")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=shibboleth_environment(root, "shibd.logger"),
        )
    runner.track(shibd)
    await wait_until(
        lambda: _accepting(socket_path),
        shibd,
        "shibd",
        SHIBD_START_TIMEOUT,
        lambda: (root / "shibd.log").read_text(errors="replace"),
    )
    apache = await runner.start(root, root / "httpd.conf", port, env=shibboleth_environment(root, "native.logger"))
    return shibd, apache


@pytest.fixture
def start_shibboleth(start_gateway: StartGateway, apache_runner: ApacheRunner) -> StartShibboleth:
    """Shibboleth first describes itself (its /Shibboleth.sso/Metadata), ``eid-gateway service add``
    registers it from that at a fresh gateway, then shibd and Apache start with the gateway's metadata.

    ``edit_registration`` rewrites the ``[[services]]`` table ``service add`` wrote before the gateway
    starts (for measurements beyond the defaults).
    """
    missing = [str(p) for p in (Path(SHIBD), Path(APACHE), MOD_SHIB) if not os.access(p, os.R_OK)]
    if missing:
        pytest.fail(
            f"Shibboleth SP is not installed ({', '.join(missing)} missing): `./dev test` installs "
            "apache2, libapache2-mod-shib and shibboleth-sp-utils"
        )

    async def start(*, edit_registration: Callable[[str], str] = lambda block: block) -> ShibbolethSp:
        # Not under pytest's tmp_path: its parents are 0700, and Apache's children (www-data when the
        # suite runs as root) read shibboleth2.xml, reach shibd's socket and run the CGI script.
        root = apache_runner.new_root()
        root.chmod(0o755)
        (root / "run").mkdir(mode=0o755)
        make_config_dir(root)
        make_apache_root(root)
        # the service's port stays bound here (so no free-port pick can take it) until its Apache starts
        with bound_socket() as holder:
            port = holder.getsockname()[1]
            origin = f"https://127.0.0.1:{port}"
            entity_id = f"{origin}/shibboleth"
            # 1. the SP's own metadata, from an Apache on another port (its URLs name the service's port)
            with bound_socket() as other:
                listen_port = other.getsockname()[1]
            write_shibboleth_config(root, entity_id, "urn:eid-gateway:not-yet-known", None)
            write_apache_config(root, port, listen_port)
            first = await _launch(root, listen_port, apache_runner)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
                async with http.get(f"https://127.0.0.1:{listen_port}/Shibboleth.sso/Metadata") as resp:
                    assert resp.status == 200, await resp.text()
                    (root / "sp-metadata.xml").write_bytes(await resp.read())
            for process in reversed(first):
                stop_process(process)
            # 2. registered from it, at a new gateway; 3. Shibboleth told about the gateway
            block = edit_registration(registration(SERVICE_ID, root / "sp-metadata.xml", root / "gateway-certs"))
            gateway = await start_gateway(edit_config=lambda text: text + block)
            async with aiohttp.ClientSession() as http:
                async with http.get(gateway.url("/saml/metadata")) as resp:
                    assert resp.status == 200
                    metadata = await resp.read()
            write_shibboleth_config(root, entity_id, gateway.config.saml_idp.entity_id, metadata)
            write_apache_config(root, port, port)
        shibd, apache = await _launch(root, port, apache_runner)
        return ShibbolethSp(origin, root, gateway, SERVICE_ID, shibd, apache)

    return start


@pytest.fixture
async def tls_browser() -> AsyncIterator[Browser]:
    """The e2e scripted browser, accepting the throwaway certificate of the test's Apache (loopback only)."""
    connector = aiohttp.TCPConnector(ssl=False)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector) as session:
        yield Browser(session)
