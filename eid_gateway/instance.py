"""A new instance directory: the example ``gateway.toml`` and the development keys (``eid-gateway init``).

Its own module because ``init``, the smoke test and the tests all write instances; the command line
only calls it (so nothing below the command line imports :mod:`eid_gateway.cli`).
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from certs.devpki import generate_dev_keys, write_private
from eid_gateway.web.branding import write_demo_logo

CONFIG_TEMPLATE = Template('''\
# eid-gateway configuration (TOML). Written by `eid-gateway init`; check it with
# `eid-gateway check-config --config $config_path`. Relative paths are relative to this file.
# This file is set up for local development: embedded eID-Server simulator, SQLite, the demo service.

# "development" or "production". Production refuses the simulator, http origins and the
# development keys from certs/ (each file says DEVELOPMENT ONLY; production refuses them).
mode = "development"

# The origin (scheme://host[:port]) under which browsers and AusweisApp reach the gateway.
# TR-03124 requires https in production; every URL the gateway issues starts with this.
public_origin = "$origin"

[listen]
# Address and port the HTTP server binds to (put a TLS reverse proxy in front in production).
host = "127.0.0.1"
port = $port
# Slow and surplus connections (see docs/deployment.md), shown with their defaults:
# header_timeout_seconds = 20     # a request's head must be complete this long after its first byte
# body_timeout_seconds = 30       # and its body this long after the head; else the connection is closed
# keepalive_timeout_seconds = 75  # idle keep-alive connections (keep above the proxy's upstream idle timeout)
# max_connections = 1000          # per process (lowered to what `ulimit -n` leaves room for)
# max_connections_per_address = 64   # per client address; [limits] trusted_proxies are exempt

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
# Several gateway nodes share one Redis instead (see docs/deployment.md):
#   kind = "redis"
#   url = "redis://127.0.0.1:6379/0"       # or rediss:// with tls = true, tls_ca_file = "..."
#   key_prefix = "eidgw:"
#   password_env = "EID_GATEWAY_REDIS_PASSWORD"   # name of the environment variable, never the password
#   sentinels = ["10.0.0.5:26379", "10.0.0.6:26379"]   # optional: Sentinel failover
#   sentinel_master = "eidgw"

# The sections below are shown with their defaults; uncomment to change them.
# [limits]
# Abuse limits per fixed window, counted in the store so that they hold across nodes; a limited
# request gets HTTP 429 with Retry-After and a readable page.
# enabled = true
# window_seconds = 60
# starts_per_ip = 60          # sign-in starts per client address
# starts_per_service = 10000  # sign-in starts per service
# pending_per_ip = 300        # sign-ins an address may have begun within one flow lifetime
# tctoken_per_ip = 30         # TC Token / refresh requests that name no (more) valid flow
# refresh_per_ip = 30
# max_body_bytes = 524288
# Reverse proxies whose X-Forwarded-For is believed (CIDR).
# trusted_proxies = ["127.0.0.0/8", "::1/128"]

# [audit]
# One hash-chained record per sign-in (service, attributes released, result, keyed hashes of the flow
# reference and the pseudonym; never names, dates or addresses). `eid-gateway audit verify` checks it.
# enabled = true
# jsonl_path = "data/audit.jsonl"   # optional copy as JSON lines

# [metrics]
# Prometheus text at /metrics for scrapers from these networks (no personal data in any label).
# enabled = true
# allow = ["127.0.0.0/8", "::1/128"]

[flow]
# How long a citizen has from the start page to the end of the card step (60..3600 seconds).
ttl_seconds = 600
# How long the refresh step waits for an eID result that is not ready yet (seconds).
result_wait_seconds = 3.0
# A result that came only while the refresh waited is held this long before release, so that a relayed
# sign-in's other browser can still end the flow (docs/security.md, "Card relay").
late_result_grace_seconds = 2.0

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
# SQLite file of the simulator's open sessions, shared by the gateway's worker processes
# (`serve --workers N`); without it the sessions live in the memory of one process.
sessions = "data/simulator-sessions.sqlite3"

[saml_idp]
# The gateway's SAML entity ID; its metadata is served at /saml/metadata.
entity_id = "$origin/saml/metadata"

[branding]
# The operator shown on every citizen page (header and footer). Production requires impressum_url and
# privacy_url: German public websites link an Impressum and a Datenschutzerklärung from every page.
operator_name = "Stadt Düren (Demo)"
# SVG or PNG (at most 256 KB; an SVG without scripts or external references), served as /static/operator-logo.*
logo = "branding/logo.svg"
# Colour of links and primary buttons (#rrggbb); refused below WCAG AA contrast (4.5:1) against white.
primary_color = "#1d4f4a"
# The demo's placeholder pages; a city links its own (https).
impressum_url = "$origin/demo/legal/impressum"
privacy_url = "$origin/demo/legal/datenschutz"
accessibility_url = "$origin/demo/legal/barrierefreiheit"
help_url = "$origin/demo/legal/hilfe"

[demo]
# The demo city service mounted at /demo (a SAML service provider). Development only.
enabled = true
# One key per purpose (BSI TR-02102). key/cert decrypt the assertions the gateway encrypts to the demo
# (RSA-OAEP, so RSA >= 3072): the demo's encryption_cert in its [[services]] entry below.
key = "certs/demo-service.key"
cert = "certs/demo-service.crt"
# signing_key/signing_cert sign the demo's AuthnRequests (EC P-256: ECDSA-SHA256): its signing_cert below.
# Without them, key signs the AuthnRequests too.
signing_key = "certs/demo-service-signing.key"
signing_cert = "certs/demo-service-signing.crt"
entity_id = "$origin/demo/metadata"
# The [[services]] entry below that registers the demo service.
service_id = "demo"
# SQLite file of the demo's sent AuthnRequest IDs and seen assertion IDs, shared by the worker
# processes; without it they live in the memory of one process.
state = "data/demo-service.sqlite3"

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
[oidc.rsa_signing_key]
# RSA (>= 3072 bits) key for clients registered with id_token_signed_response_alg = "RS256" or "PS256";
# with it discovery offers RS256, which OpenID Connect Discovery requires. ES256 stays the default.
kid = "oidc-rsa-dev-1"
path = "certs/oidc-rsa-signing.key"
# Optional: [oidc.next_signing_key] (kid, path), published ahead of a rollover.

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
# Certificate(s) that sign the service's AuthnRequests (signing_certs = [...] for several);
# RSA >= 3072 or EC P-256+. Here: the demo's [demo] signing_cert.
signing_cert = "certs/demo-service-signing.crt"
# Refuse unsigned AuthnRequests (must stay true in production).
require_signed_requests = true
# Encrypt assertions to this certificate (AES-GCM + RSA-OAEP, so an RSA certificate): the demo's
# [demo] cert. A service should use a key for encryption that it does not sign with.
encryption_cert = "certs/demo-service.crt"
encrypt_assertions = true

[services.oidc]
# The same demo service as an OpenID Connect client: a public client (PKCE S256, no secret).
# A confidential client sets token_endpoint_auth_method = "client_secret_basic" (or "client_secret_post")
# and client_secret_hash (`eid-gateway client-secret` makes a secret and prints its hash), or
# "private_key_jwt" with jwks / jwks_path. error_response_iss = false leaves RFC 9207's iss out of error
# redirects, only for mod_auth_openidc before 2.4.13, which loops on it.
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
    write_demo_logo(directory)
    text = CONFIG_TEMPLATE.substitute(origin=origin.rstrip("/"), port=port, config_path=config_path)
    write_private(config_path, text.encode("utf-8"))
    return config_path
