"""``eid-gateway service add``: one ``[[services]]`` block from an SP's SAML metadata or for an OIDC client.

Onboarding by hand meant copying entity IDs, ACS URLs and certificates out of XML, and knowing which
``key_transport`` the SP's stack decrypts. Here the SP's own metadata is read with the project's parser
(``saml.metadata``), its certificates become PEM files next to the config (0600), the key transport is
chosen from its ``md:EncryptionMethod`` list, and with ``--config`` the whole resulting config is checked
by the same loader ``serve`` uses before anything is written. Bad input: a message, exit code 2, nothing
written.
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from certs.devpki import write_private
from eid_gateway.config import ConfigError, parse_config
from eid_gateway.identity import Attribute
from saml.errors import SamlError
from saml.messages import BINDING_HTTP_POST, NAMEID_PERSISTENT, NAMEID_TRANSIENT
from saml.metadata import Endpoint, parse_metadata

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_EXISTS = 73

#: Metadata of one SP is a few kilobytes; an aggregate of a whole federation is not what this reads.
MAX_METADATA_BYTES = 1 << 20
FETCH_TIMEOUT_SECONDS = 10.0
OIDC_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


class ServiceAddError(Exception):
    """Input the command cannot turn into a valid service (exit code 2, nothing written)."""


@dataclass(frozen=True)
class SamlDraft:
    """What the ``[services.saml]`` table is made of, read from the SP's metadata."""

    entity_id: str
    acs_urls: tuple[str, ...]
    signing_certs: tuple[x509.Certificate, ...]
    encryption_cert: x509.Certificate | None
    #: ``None``: the metadata lists no ``md:EncryptionMethod``, the gateway's default applies.
    key_transport: str | None
    name_id_formats: tuple[str, ...]
    signed: bool = False
    #: The metadata's AuthnRequestsSigned (the gateway refuses unsigned AuthnRequests either way).
    signs_requests: bool = True


# --- reading the metadata -----------------------------------------------------------------------------


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to https (unless http is allowed): a redirect must not downgrade the fetch."""

    def __init__(self, allow_http: bool) -> None:
        super().__init__()
        self.allow_http = allow_http

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: object, newurl: str
    ) -> urllib.request.Request | None:
        if not _scheme_allowed(newurl, self.allow_http):
            raise ServiceAddError(f"the metadata URL redirects to {newurl}, which is not https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)  # type: ignore[arg-type]


def _scheme_allowed(url: str, allow_http: bool) -> bool:
    scheme = urlsplit(url).scheme
    return scheme == "https" or (allow_http and scheme == "http")


def read_metadata_source(source: str, *, allow_http: bool = False, timeout: float = FETCH_TIMEOUT_SECONDS) -> bytes:
    """The metadata bytes from a file path or an https URL (http only with ``allow_http``, for development)."""
    if "://" not in source:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_METADATA_BYTES + 1)
        except OSError as exc:
            raise ServiceAddError(f"cannot read {source} ({exc.strerror})") from None
    else:
        if not _scheme_allowed(source, allow_http):
            raise ServiceAddError("the metadata URL must be https (--allow-http only for development)")
        opener = urllib.request.build_opener(_HttpsOnlyRedirects(allow_http))
        try:
            with opener.open(source, timeout=timeout) as resp:
                data = resp.read(MAX_METADATA_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise ServiceAddError(f"fetching {source} failed: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceAddError(f"fetching {source} failed: {reason}") from None
    if len(data) > MAX_METADATA_BYTES:
        raise ServiceAddError(
            f"the metadata is larger than {MAX_METADATA_BYTES} bytes (one SP's metadata, "
            "not a federation aggregate, please)"
        )
    return data


def _post_acs(endpoints: Sequence[Endpoint]) -> tuple[str, ...]:
    """HTTP-POST ACS URLs, the default (isDefault, else lowest index) first; the gateway answers by POST."""
    post = [e for e in endpoints if e.binding == BINDING_HTTP_POST]
    post.sort(key=lambda e: (e.is_default is not True, e.index if e.index is not None else 65536))
    return tuple(dict.fromkeys(e.location for e in post))


def saml_draft(xml: bytes, *, encrypt: bool = True) -> SamlDraft:
    """Read one SP's metadata (unsigned is accepted: the operator compares the fingerprints printed)."""
    from eid_gateway.frontends.saml_idp import choose_key_transport

    try:
        entity = parse_metadata(xml)
    except SamlError as exc:
        raise ServiceAddError(f"the metadata is not usable: {exc}") from None
    sp = entity.sp
    if sp is None:
        raise ServiceAddError("the metadata describes no SAML 2.0 SP (no SPSSODescriptor)")
    acs = _post_acs(sp.acs_services)
    if not acs:
        raise ServiceAddError(
            "the metadata has no AssertionConsumerService with the HTTP-POST binding, "
            "the only one the gateway answers with"
        )
    signing = tuple(sp.signing_certificates())
    if not signing:
        raise ServiceAddError("the metadata has no signing certificate; the gateway accepts only signed AuthnRequests")
    enc_certs = [kd.certificate for kd in sp.keys if kd.use == "encryption"] or sp.encryption_certificates()
    key_transport: str | None = None
    if encrypt:
        if not enc_certs:
            raise ServiceAddError(
                "the metadata has no encryption certificate, but assertions are to be "
                "encrypted (--no-encrypt to send them signed only)"
            )
        try:
            key_transport = choose_key_transport(sp.encryption_methods())
        except ValueError as exc:
            raise ServiceAddError(f"the SP cannot decrypt what the gateway sends: {exc}") from None
    return SamlDraft(
        entity_id=entity.entity_id,
        acs_urls=acs,
        signing_certs=signing,
        encryption_cert=enc_certs[0] if encrypt else None,
        key_transport=key_transport,
        name_id_formats=sp.name_id_formats,
        signed=entity.signed,
        signs_requests=sp.authn_requests_signed,
    )


# --- writing the block --------------------------------------------------------------------------------


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_toml(v) for v in values) + "]"


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _name_id_comment(formats: Sequence[str]) -> str:
    if not formats:
        return "# The metadata names no NameIDFormat: persistent pseudonymous NameIDs (the default)."
    usable = [f for f in formats if f in (NAMEID_PERSISTENT, NAMEID_TRANSIENT)]
    text = f"# NameIDFormat in the SP's metadata: {', '.join(formats)}."
    if not usable:
        text += "\n# WARNING: the gateway issues only persistent and transient NameIDs."
    return text


@dataclass(frozen=True)
class ServiceBlock:
    """The block's text and the certificate files it refers to (path -> PEM), written together."""

    text: str
    files: dict[Path, bytes]


def render_block(
    args: argparse.Namespace, draft: SamlDraft | None, cert_dir: Path, cert_ref: str, secret_hash: str | None
) -> ServiceBlock:
    """The ``[[services]]`` text; ``cert_ref`` is how the block names ``cert_dir`` (relative to the config)."""
    files: dict[Path, bytes] = {}

    def cert_file(name: str, cert: x509.Certificate) -> str:
        files[cert_dir / name] = cert.public_bytes(serialization.Encoding.PEM)
        return f"{cert_ref}/{name}" if cert_ref else name

    lines = [
        f"# Added by `eid-gateway service add`{' from SAML metadata' if draft else ''}.",
        "[[services]]",
        f"id = {_toml(args.id)}",
        f"name_de = {_toml(args.name_de)}",
        f"name_en = {_toml(args.name_en or args.name_de)}",
        f"attributes = {_toml_list(args.attributes)}",
    ]
    if draft is not None:
        lines += [
            "",
            "[services.saml]",
            f"entity_id = {_toml(draft.entity_id)}",
            f"acs_urls = {_toml_list(draft.acs_urls)}",
        ]
        names = [
            cert_file(f"{args.id}-saml-signing{'' if i == 0 else f'-{i + 1}'}.crt", c)
            for i, c in enumerate(draft.signing_certs)
        ]
        for cert in draft.signing_certs:
            lines.append(f"# signing certificate SHA-256 {fingerprint(cert)}")
        lines.append(f"signing_cert = {_toml(names[0])}" if len(names) == 1 else f"signing_certs = {_toml_list(names)}")
        lines.append("require_signed_requests = true")
        if draft.encryption_cert is not None:
            lines.append(f"# encryption certificate SHA-256 {fingerprint(draft.encryption_cert)}")
            lines.append(
                f"encryption_cert = {_toml(cert_file(f'{args.id}-saml-encryption.crt', draft.encryption_cert))}"
            )
            lines.append("encrypt_assertions = true")
            if draft.key_transport is not None:
                lines.append("# chosen from the md:EncryptionMethod list in the SP's metadata")
                lines.append(f"key_transport = {_toml(draft.key_transport)}")
        else:
            lines.append("encrypt_assertions = false")
        lines.append(_name_id_comment(draft.name_id_formats))
    if args.oidc_redirect_uri:
        method = args.oidc_auth
        lines += [
            "",
            "[services.oidc]",
            f"client_id = {_toml(args.oidc_client_id or args.id)}",
            f"redirect_uris = {_toml_list(args.oidc_redirect_uri)}",
            f"token_endpoint_auth_method = {_toml(method)}",
        ]
        if method in _SECRET_METHODS and secret_hash is not None:
            lines.append(f"client_secret_hash = {_toml(secret_hash)}")
        elif method == "private_key_jwt":
            lines.append(f"jwks_path = {_toml(str(args.oidc_jwks))}")
        elif method == "none":
            lines.append("public_client = true")
        if args.oidc_no_iss_in_errors:
            lines.append(
                "# compatibility switch for mod_auth_openidc before 2.4.13 (docs/integrations/mod_auth_openidc.md)"
            )
            lines.append("error_response_iss = false")
    return ServiceBlock("\n".join(lines) + "\n", files)


# --- the command ----------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id", required=True, help="service id (a-z, 0-9, -, _); also keys its pseudonyms")
    p.add_argument("--name-de", required=True, help="name shown to citizens (German)")
    p.add_argument("--name-en", help="name shown to citizens (English; default: the German one)")
    p.add_argument(
        "--attributes",
        default="pseudonym",
        help="comma-separated attributes the service may receive (default: pseudonym)",
    )
    p.add_argument(
        "--config",
        help="append the block to this config after validating the whole result; "
        "certificates go to certs/ next to it (without: print the block)",
    )
    p.add_argument("--cert-dir", default=".", help="without --config: where the certificate files go")
    p.add_argument("--saml-metadata", metavar="FILE|URL", help="the SP's SAML metadata (https URL or file)")
    p.add_argument("--no-encrypt", action="store_true", help="send assertions signed only, not encrypted")
    p.add_argument("--allow-http", action="store_true", help="allow an http metadata URL (development only)")
    p.add_argument(
        "--oidc-redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="an OIDC redirect URI (repeat for several); makes a [services.oidc] table",
    )
    p.add_argument("--oidc-client-id", help="OIDC client_id (default: the service id)")
    p.add_argument(
        "--oidc-auth",
        choices=OIDC_AUTH_METHODS,
        default="client_secret_basic",
        help="token endpoint authentication (default client_secret_basic)",
    )
    p.add_argument("--oidc-jwks", type=Path, help="private_key_jwt: the client's JWKS file (jwks_path)")
    p.add_argument(
        "--oidc-no-iss-in-errors",
        action="store_true",
        help="leave RFC 9207's iss out of error redirects: only for mod_auth_openidc before 2.4.13, "
        "which takes such a redirect for a discovery response and loops",
    )


def _attributes(text: str) -> list[str]:
    names = [a.strip() for a in text.split(",") if a.strip()]
    known = {a.value for a in Attribute}
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ServiceAddError(
            f"--attributes: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(sorted(known))}"
        )
    return names


def _validated_config_text(config_path: Path, block: str) -> str:
    """The config with the block appended, if the loader finds the whole of it valid."""
    try:
        current = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceAddError(f"cannot read {config_path} ({exc})") from None
    text = current.rstrip("\n") + "\n\n" + block
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ServiceAddError(f"{config_path} would not be valid TOML: {exc}") from None
    parse_config(data, config_path.resolve().parent, source=config_path)  # raises ConfigError
    return text


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        return _run(args, out, err)
    except ServiceAddError as exc:
        err.write(f"error: {exc}\nnothing was written\n")
        return EXIT_INVALID


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from eid_gateway.frontends.oidc.client_secret import hash_client_secret, new_client_secret

    if not args.saml_metadata and not args.oidc_redirect_uri:
        raise ServiceAddError("give --saml-metadata FILE|URL and/or --oidc-redirect-uri URI")
    args.attributes = _attributes(args.attributes)
    if args.oidc_auth == "private_key_jwt" and args.oidc_redirect_uri and args.oidc_jwks is None:
        raise ServiceAddError("--oidc-auth private_key_jwt needs --oidc-jwks FILE (the client's public keys)")
    draft = None
    if args.saml_metadata:
        xml = read_metadata_source(args.saml_metadata, allow_http=args.allow_http)
        draft = saml_draft(xml, encrypt=not args.no_encrypt)
    secret = new_client_secret() if args.oidc_redirect_uri and args.oidc_auth in _SECRET_METHODS else None
    secret_hash = hash_client_secret(secret) if secret is not None else None
    config_path = Path(args.config) if args.config else None
    if config_path is not None:
        cert_dir, cert_ref = config_path.parent / "certs", "certs"
    else:
        cert_dir = Path(args.cert_dir)
        cert_ref = str(cert_dir.resolve())
    block = render_block(args, draft, cert_dir, cert_ref, secret_hash)
    existing = [p for p in block.files if p.exists()]
    if existing:
        err.write(
            f"error: {', '.join(map(str, existing))} exists (another service with this id?)\nnothing was written\n"
        )
        return EXIT_EXISTS
    written: list[Path] = []
    try:
        cert_dir.mkdir(parents=True, exist_ok=True)
        for path, pem in block.files.items():
            write_private(path, pem)
            written.append(path)
        if config_path is not None:
            text = _validated_config_text(config_path, block.text)
            _replace_private(config_path, text)
    except ConfigError as exc:
        _remove(written)
        err.write(f"error: {config_path} would not be valid with this service:\n")
        err.write("".join(f"  - {line}\n" for line in exc.errors))
        err.write("nothing was written\n")
        return EXIT_INVALID
    except ServiceAddError:
        _remove(written)
        raise
    except OSError as exc:
        _remove(written)
        raise ServiceAddError(f"cannot write {exc.filename or ''} ({exc.strerror})") from None
    if config_path is None:
        out.write(block.text)
    else:
        out.write(f"added service {args.id!r} to {config_path}; certificates in {cert_dir}\n")
    if draft is not None and not draft.signs_requests:
        err.write(
            'note: the metadata does not say AuthnRequestsSigned="true"; the gateway refuses unsigned '
            'AuthnRequests, so configure the SP to sign them (Shibboleth SP: signing="true")\n'
        )
    if draft is not None and not draft.signed:
        err.write(
            "note: the metadata is not signed: compare the SHA-256 fingerprints in the block with the "
            "SP operator's before going live\n"
        )
    if secret is not None:  # never into the printed block, which is often redirected into a file
        (out if config_path is not None else err).write(
            f"client secret (give it to the service; shown only now, stored only as its hash): {secret}\n"
        )
    return EXIT_OK


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _replace_private(path: Path, text: str) -> None:
    """Write next to ``path`` and rename over it: a reader never sees half a config."""
    tmp = path.with_name(f".{path.name}.service-add.tmp")
    write_private(tmp, text.encode("utf-8"))
    os.replace(tmp, path)
