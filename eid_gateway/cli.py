"""``eid-gateway``: the one command line entry point (serve, init, check-config, metadata, verify, ...)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import TextIO
from urllib.parse import urlsplit

from certs.devpki import DevPkiExists, generate_dev_keys
from eid_gateway.config import ConfigError, GatewayConfig, default_config_path, load_config

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_USAGE = 64
EXIT_EXISTS = 73

CONFIG_TEMPLATE = Template('''\
# eid-gateway configuration (TOML). Written by `eid-gateway init`; check it with
# `eid-gateway check-config --config $config_path`. Relative paths are relative to this file.
# This file is set up for local development: embedded eID-Server simulator, SQLite, the demo service.

# "development" or "production". Production refuses the simulator, http origins and the
# development keys from certs/ (their certificates say DEVELOPMENT ONLY).
mode = "development"

# The origin (scheme://host[:port]) under which browsers and AusweisApp reach the gateway.
# TR-03124 requires https in production; every URL the gateway issues starts with this.
public_origin = "$origin"

[listen]
# Address and port the HTTP server binds to (put a TLS reverse proxy in front in production).
host = "127.0.0.1"
port = $port

[keys]
# Key and certificate that sign the SAML IdP's responses and metadata (RSA >= 3072 or EC P-256+).
saml_signing_key = "certs/saml-signing.key"
saml_signing_cert = "certs/saml-signing.crt"
# Optional next signing key, published in the metadata ahead of a key rollover.
saml_signing_next_key = "certs/saml-signing-next.key"
saml_signing_next_cert = "certs/saml-signing-next.crt"
# The gateway's eID-Interface client key (signs TR-03130 SOAP messages, mutual TLS client cert).
# PEM key + certificate, or a PKCS#12 file (.p12/.pfx) as eid_client_key.
eid_client_key = "certs/eid-client.key"
eid_client_cert = "certs/eid-client.crt"
# Optional: name of an environment variable holding the password of encrypted keys / PKCS#12 files
# (the password itself never goes into this file), e.g. password_env = "EID_GATEWAY_KEY_PASSWORD".
# At least 32 random bytes; keys the per-service pseudonyms. Changing it changes every pseudonym.
pseudonym_secret = "certs/pseudonym.secret"

[store]
# Where pending sign-ins and one-time values live. "sqlite": one file in WAL mode.
kind = "sqlite"
path = "data/gateway.sqlite3"

[flow]
# How long a citizen has from the start page to the end of the card step (60..3600 seconds).
ttl_seconds = 600
# How long the refresh step waits for an eID result that is not ready yet (seconds).
result_wait_seconds = 3.0

[eid_server]
# "simulator": the embedded eID-Server simulator (test only, no card needed).
# "tr03130": a real eID-Server over the TR-03130 eID-Interface (SOAP, WS-Security, mutual TLS); then set
#   url = "https://eid-server.example.de/eID"   # its eID-Interface endpoint
#   server_cert = "certs/eid-server.crt"        # its WS-Security signing certificate (pinned)
#   tls_ca_file = "certs/eid-server-ca.pem"     # optional: CA bundle for its TLS certificate
kind = "simulator"
# Time limit for one call to the eID-Server (seconds).
timeout_seconds = 10

[simulator]
# Signing key of the embedded simulator (its WS-Security identity). Only used with kind = "simulator".
key = "certs/simulator.key"
cert = "certs/simulator.crt"
# URL prefix of the simulator's endpoints (SOAP at <prefix>/eID, AusweisApp stand-in at <prefix>/client).
prefix = "/eid-sim"

[saml_idp]
# The gateway's SAML entity ID; its metadata is served at /saml/metadata.
entity_id = "$origin/saml/metadata"

[demo]
# The demo city service mounted at /demo (a SAML service provider). Development only.
enabled = true
key = "certs/demo-service.key"
cert = "certs/demo-service.crt"
entity_id = "$origin/demo/metadata"
# The [[services]] entry below that registers the demo service.
service_id = "demo"

[oidc]
# The gateway as OpenID Connect provider; discovery at $origin/.well-known/openid-configuration.
# Seconds an authorization code lives (1..60), and an access token / ID token.
code_lifetime = 60
access_token_lifetime = 300
id_token_lifetime = 300
[oidc.signing_key]
# EC P-256 key that signs ID tokens (ES256); published with this kid at $origin/oidc/jwks.
kid = "oidc-dev-1"
path = "certs/oidc-signing.key"
# Optional: [oidc.next_signing_key] (kid, path), published ahead of a rollover;
# [oidc.rsa_signing_key] (RSA >= 3072) only for clients with id_token_signed_response_alg = "PS256"/"RS256".

# One [[services]] table per city service allowed to use the gateway.
[[services]]
# Stable identifier (a-z, 0-9, -, _); also keys the service's pseudonyms.
id = "demo"
# Names shown to citizens on the start page.
name_de = "Meldebescheinigung beantragen"
name_en = "Apply for a certificate of registration"
# What the service may receive (it gets registration ∩ what it asks for). Known attributes:
# document_type, issuing_state, date_of_expiry, given_names, family_names, artistic_name,
# doctoral_degree, date_of_birth, place_of_birth, nationality, birth_name, address, community_id,
# residence_permit, pseudonym, age_verification, place_verification
attributes = ["given_names", "family_names", "date_of_birth", "address", "pseudonym"]
# The subset the card step must deliver (the citizen cannot deselect these in AusweisApp).
required = ["given_names", "family_names", "date_of_birth", "address", "pseudonym"]
# Optional: minimum_age = 18 (needs "age_verification"), community_id = "02760503150000"
# (needs "place_verification"), level_of_assurance = "high" | "substantial" | "low".

[services.saml]
# The service's SAML entity ID and its exact Assertion Consumer Service URLs (https in production).
entity_id = "$origin/demo/metadata"
acs_urls = ["$origin/demo/acs"]
# Certificate(s) that sign the service's AuthnRequests (signing_certs = [...] for several).
signing_cert = "certs/demo-service.crt"
# Refuse unsigned AuthnRequests (must stay true in production).
require_signed_requests = true
# Encrypt assertions to this certificate (AES-GCM + RSA-OAEP).
encryption_cert = "certs/demo-service.crt"
encrypt_assertions = true

[services.oidc]
# The same demo service as an OpenID Connect client: a public client (PKCE S256, no secret).
# A confidential client sets token_endpoint_auth_method = "client_secret_basic" and client_secret_hash,
# or "private_key_jwt" with jwks / jwks_path.
client_id = "demo-oidc"
redirect_uris = ["$origin/demo/oidc/callback"]
public_client = true
''')


def write_example_config(directory: Path, origin: str, port: int, *, force: bool = False) -> Path:
    """Write ``directory/gateway.toml`` and the development keys under ``directory/certs``.

    Refuses (``FileExistsError`` / :class:`DevPkiExists`) to overwrite anything unless ``force``.
    """
    config_path = directory / "gateway.toml"
    if config_path.exists() and not force:
        raise FileExistsError(f"{config_path} exists (use --force to overwrite)")
    directory.mkdir(parents=True, exist_ok=True)
    generate_dev_keys(directory / "certs", overwrite=force)
    config_path.write_text(
        CONFIG_TEMPLATE.substitute(origin=origin.rstrip("/"), port=port, config_path=config_path),
        encoding="utf-8",
    )
    return config_path


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line. Messages are the gateway's own key=value lines (no personal data)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


# --- commands ---------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace, err: TextIO) -> GatewayConfig | None:
    path = Path(args.config) if args.config else default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        err.write(f"{path}: configuration is not valid:\n")
        for line in exc.errors:
            err.write(f"  - {line}\n")
        return None


def _cmd_init(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    directory = Path(args.dir)
    origin = args.origin or f"http://127.0.0.1:{args.port}"
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        err.write("error: --origin must look like http://127.0.0.1:8080 or https://eid.example.de\n")
        return EXIT_USAGE
    try:
        path = write_example_config(directory, origin, args.port, force=args.force)
    except (FileExistsError, DevPkiExists) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_EXISTS
    out.write(f"wrote {path} and development keys in {directory / 'certs'}\n")
    out.write(f"start with: eid-gateway serve --config {path}\n")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    out.write(
        f"configuration OK: mode={config.mode} origin={config.public_origin} "
        f"eid_server={config.eid_server.kind} services={len(config.services.services)}\n"
    )
    return EXIT_OK


def _serve(app_factory: str, args: argparse.Namespace, err: TextIO) -> int:
    from aiohttp import web

    configure_logging(str(args.log_level), str(args.log_format))
    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    from eid_gateway import app as app_module

    factory = getattr(app_module, app_factory)
    host = args.host or config.listen.host
    port = args.port or config.listen.port
    web.run_app(factory(config), host=host, port=port, access_log=None, print=None)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _serve("create_app", args, err)


def _cmd_simulator(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _serve("create_simulator_app", args, err)


def _cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _serve("create_demo_only_app", args, err)


def _cmd_metadata(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _load(args, err)
    if config is None:
        return EXIT_CONFIG
    from eid_gateway.frontends import saml_idp

    xml: bytes = saml_idp.idp_metadata(config)
    out.write(xml.decode("utf-8"))
    if not xml.endswith(b"\n"):
        out.write("\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eid-gateway", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("EID_GATEWAY_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=("text", "json"),
                        default=os.environ.get("EID_GATEWAY_LOG_FORMAT", "text"),
                        help="json: one object per line for log collectors")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help=f"config file (default: ${'{'}EID_GATEWAY_CONFIG{'}'} or "
                                        f"{default_config_path()})")

    s = sub.add_parser("serve", help="run the gateway")
    with_config(s)
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(func=_cmd_serve)

    i = sub.add_parser("init", help="write an example config and development keys")
    i.add_argument("--dir", default="instance")
    i.add_argument("--origin", help="public origin (default http://127.0.0.1:PORT)")
    i.add_argument("--port", type=int, default=8080)
    i.add_argument("--force", action="store_true", help="overwrite an existing config and keys")
    i.set_defaults(func=_cmd_init)

    c = sub.add_parser("check-config", help="validate the config; lists every problem")
    with_config(c)
    c.set_defaults(func=_cmd_check)

    m = sub.add_parser("metadata", help="print the SAML IdP metadata")
    with_config(m)
    m.set_defaults(func=_cmd_metadata)

    v = sub.add_parser("verify", help="verify a SAML Response (see `eid-gateway verify --help`)",
                       add_help=False)
    v.add_argument("rest", nargs=argparse.REMAINDER)
    v.set_defaults(func=None)

    sim = sub.add_parser("simulator", help="serve only the eID-Server simulator (test facility)")
    with_config(sim)
    sim.add_argument("--host")
    sim.add_argument("--port", type=int)
    sim.set_defaults(func=_cmd_simulator)

    d = sub.add_parser("demo-service", help="serve only the demo city service")
    with_config(d)
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    d.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        from saml import cli as saml_cli

        return saml_cli.main(["verify", *argv[1:]], prog="eid-gateway", stdout=out, stderr=err)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    code: int = args.func(args, out, err)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
