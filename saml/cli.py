"""``python -m saml``: verify a Response against IdP metadata, generate keys, write metadata.

Every failure class has its own exit code (see :data:`EXIT_CODES`) so that scripts can tell an expired
assertion from a forged one without parsing messages.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TextIO
from urllib.parse import parse_qs

from saml import dsig, errors, validate
from saml import metadata as md
from saml.keys import KeyPair, generate_key_pair, key_pair_to_pem, load_certificates, load_key_pair
from saml.messages import (
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    parse_datetime,
)
from saml.xml import NS, parse_xml, to_bytes

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2

#: Most specific first: the first class the error is an instance of decides the exit code.
EXIT_CODES: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (validate.StatusError, 10),
    (validate.Expired, 11),
    (validate.NotYetValid, 12),
    (validate.AudienceMismatch, 13),
    (validate.DestinationMismatch, 14),
    (validate.RecipientMismatch, 15),
    (validate.IssuerMismatch, 16),
    (validate.InResponseToMismatch, 17),
    (validate.UnsolicitedResponse, 18),
    (validate.ReplayedAssertion, 19),
    (validate.AssertionCountError, 20),
    (validate.NoBearerConfirmation, 21),
    (validate.MissingAuthnStatement, 22),
    (errors.ValidationError, 23),
    (dsig.MissingSignature, 30),
    (dsig.ReferenceMismatch, 31),
    (dsig.DuplicateId, 32),
    (dsig.UntrustedKey, 33),
    (dsig.BadSignature, 34),
    (dsig.ForbiddenAlgorithm, 35),
    (errors.SignatureError, 36),
    (errors.EncryptionError, 40),
    (errors.XmlSecurityError, 50),
    (errors.MessageError, 51),
    (errors.BindingError, 52),
    (errors.MetadataError, 60),
    (errors.SamlError, EXIT_ERROR),
)


def exit_code_for(exc: BaseException) -> int:
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_ERROR


class _AnyRequestStore:
    """For offline inspection only: treats every InResponseTo as a pending request."""

    def add(self, request_id: str, *, expires_at: datetime) -> None:
        return None

    def consume(self, request_id: str, *, now: datetime | None = None) -> bool:
        return True


def _read_response(data: bytes) -> bytes:
    """The Response XML from raw XML, the base64 form value, or an url-encoded ``SAMLResponse=`` body."""
    stripped = data.strip()
    if stripped.startswith(b"<"):
        return stripped
    text = stripped.decode("ascii", "replace")
    if text.startswith("SAMLResponse="):
        values = parse_qs(text).get("SAMLResponse", [])
        if len(values) != 1:
            raise errors.BindingError("form body does not hold exactly one SAMLResponse")
        text = values[0]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise errors.BindingError("input is neither XML nor base64") from None


def _unverified_defaults(xml: bytes) -> tuple[str | None, str | None]:
    """Destination and first Audience, read *unverified*, for when the operator did not give them."""
    root = parse_xml(xml)
    audience = root.find(f".//{{{NS['saml']}}}Audience")
    return root.get("Destination"), (audience.text if audience is not None else None)


def _cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now = parse_datetime(args.now, "--now") if args.now else datetime.now(UTC)
    idp = md.parse_metadata(
        Path(args.metadata).read_bytes(),
        trusted=load_certificates(Path(args.metadata_cert).read_bytes()) if args.metadata_cert else None,
        require_signature=bool(args.metadata_cert),
        now=now,
    )
    raw = sys.stdin.buffer.read() if args.response == "-" else Path(args.response).read_bytes()
    xml = _read_response(raw)
    acs_url, sp_entity_id = args.acs_url, args.sp_entity_id
    if acs_url is None or sp_entity_id is None:
        dest, audience = _unverified_defaults(xml)
        if acs_url is None:
            acs_url = dest
            err.write("warning: --acs-url not given; the Destination is compared with itself\n")
        if sp_entity_id is None:
            sp_entity_id = audience
            err.write("warning: --sp-entity-id not given; the audience is compared with itself\n")
        if acs_url is None or sp_entity_id is None:
            err.write("error: give --acs-url and --sp-entity-id (the response does not name them)\n")
            return EXIT_USAGE
    keys: list[KeyPair] = []
    for key_path, cert_path in zip(args.key, args.cert, strict=True):
        keys.append(load_key_pair(Path(key_path).read_bytes(), Path(cert_path).read_bytes()))
    validator = validate.ResponseValidator.from_metadata(
        idp,
        sp_entity_id=sp_entity_id,
        acs_url=acs_url,
        decryption_keys=keys,
        require_signed_response=args.require_signed_response,
        require_signed_assertion=not args.allow_unsigned_assertion,
        allow_unsolicited=args.allow_unsolicited,
        clock_skew=timedelta(seconds=args.skew),
        request_store=_AnyRequestStore() if args.any_request_id else None,
    )
    if args.any_request_id:
        err.write("warning: --any-request-id: InResponseTo is not checked\n")
    for request_id in args.request_id:
        validator.request_store.add(request_id, expires_at=now + timedelta(days=1))
    result = validator.validate(xml, now=now)
    out.write("OK: the response verifies\n")
    out.write(f"issuer: {result.issuer}\n")
    out.write(f"response: {result.response_id} (signed: {result.response_signed})\n")
    out.write(f"assertion: {result.assertion.id} (signed: {result.assertion_signed}, encrypted: {result.encrypted})\n")
    out.write(f"in_response_to: {result.in_response_to or '-'}\n")
    out.write(f"subject: {result.name_id.value}\n")
    out.write(f"subject_format: {result.name_id.format or '-'}\n")
    out.write(f"session_index: {result.session_index or '-'}\n")
    out.write(f"authn_instant: {result.authn_instant.isoformat()}\n")
    out.write(f"authn_context: {result.authn_context or '-'}\n")
    for name, values in result.attributes.items():
        out.write(f"attribute: {name} = {', '.join(values)}\n")
    return EXIT_OK


def _cmd_keygen(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kp = generate_key_pair(kind=args.kind, common_name=args.cn, days=args.days)
    key_pem, cert_pem = key_pair_to_pem(kp)
    fd = os.open(args.out_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_pem)
    Path(args.out_cert).write_bytes(cert_pem)
    out.write(f"wrote {args.out_key} and {args.out_cert} ({args.kind})\n")
    return EXIT_OK


def _load_certs(paths: Sequence[str], use: str | None) -> list[md.KeyDescriptor]:
    return [md.KeyDescriptor(cert, use) for p in paths for cert in load_certificates(Path(p).read_bytes())]


def _cmd_metadata(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if bool(args.idp_sso) == bool(args.acs):
        err.write("error: give --idp-sso URL (IdP) or --acs URL (SP)\n")
        return EXIT_USAGE
    signing_use = md.USE_SIGNING if args.enc_cert else None
    keys = tuple(_load_certs(args.cert, signing_use) + _load_certs(args.enc_cert, md.USE_ENCRYPTION))
    slo = tuple(md.Endpoint(BINDING_HTTP_REDIRECT, url) for url in args.slo)
    formats = tuple(args.name_id_format or [NAMEID_TRANSIENT, NAMEID_PERSISTENT])
    idp = sp = None
    if args.idp_sso:
        sso = tuple(md.Endpoint(b, url) for url in args.idp_sso for b in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST))
        idp = md.IDPSSODescriptor(
            sso_services=sso,
            keys=keys,
            slo_services=slo,
            name_id_formats=formats,
            want_authn_requests_signed=args.want_authn_requests_signed,
        )
    else:
        acs = tuple(
            md.Endpoint(BINDING_HTTP_POST, url, index=i, is_default=(i == 0) or None) for i, url in enumerate(args.acs)
        )
        sp = md.SPSSODescriptor(
            acs_services=acs,
            keys=keys,
            slo_services=slo,
            name_id_formats=formats,
            authn_requests_signed=bool(args.sign_key),
            want_assertions_signed=True,
        )
    valid_until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=args.valid_days)
    entity = md.EntityDescriptor(
        entity_id=args.entity_id, idp=idp, sp=sp, valid_until=valid_until, cache_duration=timedelta(hours=24)
    )
    sign_key = None
    if args.sign_key:
        if not args.sign_cert:
            err.write("error: --sign-key needs --sign-cert\n")
            return EXIT_USAGE
        sign_key = load_key_pair(Path(args.sign_key).read_bytes(), Path(args.sign_cert).read_bytes())
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + to_bytes(md.build_metadata(entity, sign_key=sign_key)) + b"\n"
    if args.out:
        Path(args.out).write_bytes(xml)
    else:
        out.write(xml.decode("utf-8"))
    return EXIT_OK


def build_parser(prog: str = "python -m saml") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="SAML 2.0 toolkit: verify, keygen, metadata")
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verify", help="verify a SAML Response against IdP metadata")
    v.add_argument("response", help="file with the Response (XML, base64 as posted, or SAMLResponse=...), - for stdin")
    v.add_argument("--metadata", required=True, help="the IdP's metadata (trusted; its keys verify the response)")
    v.add_argument("--metadata-cert", help="PEM certificate(s) that must have signed the metadata")
    v.add_argument("--sp-entity-id", help="our entity ID (the expected audience)")
    v.add_argument("--acs-url", help="our ACS URL (expected Destination and Recipient)")
    v.add_argument("--key", action="append", default=[], help="decryption key (PEM); pair with --cert")
    v.add_argument("--cert", action="append", default=[], help="certificate of the decryption key (PEM)")
    v.add_argument("--request-id", action="append", default=[], help="ID of the AuthnRequest that was sent")
    v.add_argument("--any-request-id", action="store_true", help="do not check InResponseTo (offline inspection)")
    v.add_argument("--allow-unsolicited", action="store_true", help="accept a response without InResponseTo")
    v.add_argument("--require-signed-response", action="store_true")
    v.add_argument(
        "--allow-unsigned-assertion",
        action="store_true",
        help="accept an unsigned assertion inside a signed Response (implies --require-signed-response)",
    )
    v.add_argument("--now", help="check times as of this xs:dateTime instead of the current time")
    v.add_argument("--skew", type=int, default=60, help="allowed clock skew in seconds (default 60)")
    v.set_defaults(func=_cmd_verify)

    k = sub.add_parser("keygen", help="generate a key and a self-signed certificate")
    k.add_argument(
        "--kind",
        default="ec-p256",
        choices=["ec-p256", "ec-p384", "ec-p521", "ec-bp256", "ec-bp384", "rsa-3072", "rsa-4096"],
    )
    k.add_argument("--cn", required=True, help="common name of the certificate")
    k.add_argument("--days", type=int, default=730)
    k.add_argument("--out-key", required=True)
    k.add_argument("--out-cert", required=True)
    k.set_defaults(func=_cmd_keygen)

    m = sub.add_parser("metadata", help="write IdP or SP metadata")
    m.add_argument("--entity-id", required=True)
    m.add_argument("--cert", action="append", required=True, help="signing certificate (PEM); repeat for rollover")
    m.add_argument("--enc-cert", action="append", default=[], help="encryption certificate (PEM)")
    m.add_argument("--idp-sso", action="append", default=[], help="IdP SingleSignOnService URL")
    m.add_argument("--acs", action="append", default=[], help="SP AssertionConsumerService URL (HTTP-POST)")
    m.add_argument("--slo", action="append", default=[], help="SingleLogoutService URL (HTTP-Redirect)")
    m.add_argument("--name-id-format", action="append")
    m.add_argument("--want-authn-requests-signed", action="store_true")
    m.add_argument("--sign-key", help="sign the metadata with this key (PEM)")
    m.add_argument("--sign-cert", help="certificate of --sign-key (PEM)")
    m.add_argument("--valid-days", type=int, default=30)
    m.add_argument("--out", help="output file (default: stdout)")
    m.set_defaults(func=_cmd_metadata)
    return parser


def main(
    argv: list[str] | None = None,
    *,
    prog: str = "python -m saml",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "allow_unsigned_assertion", False):
        args.require_signed_response = True
    if args.command == "verify" and len(args.key) != len(args.cert):
        err.write("error: every --key needs one --cert\n")
        return EXIT_USAGE
    try:
        code: int = args.func(args, out, err)
        return code
    except errors.SamlError as exc:
        err.write(f"error [{type(exc).__name__}/{exc.code}]: {exc}\n")
        return exit_code_for(exc)
    except OSError as exc:
        err.write(f"error: {exc.strerror or exc}: {exc.filename or ''}\n")
        return EXIT_ERROR
