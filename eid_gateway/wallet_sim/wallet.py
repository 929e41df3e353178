"""The test wallet: answers an OpenID4VP 1.0 request as a holder's wallet would (TEST FACILITY).

:meth:`TestWallet.present` takes the invocation URL the gateway shows (``...?client_id=..&request_uri=..``),
fetches the request object, checks its signature and the ``x509_hash`` client identifier against its
``x5c``, evaluates the DCQL query (discloses only the claims asked for, with the reference library's
``SDJWTHolder`` and its KB-JWT), encrypts the response to the verifier's key (ECDH-ES, A128GCM/A256GCM)
and POSTs it to ``response_uri`` (``direct_post.jwt``).

:class:`Tamper` makes the wallet misbehave in one named way, one per check of the verifier, for the
negative tests. The wallet does not check the verifier's certificate against a trust list (a test
wallet trusts any verifier; the ``x509_hash`` binding is checked).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from jwcrypto import jwk
from jwcrypto.common import JWException
from jwcrypto.jws import JWS
from sd_jwt.holder import SDJWTHolder

from certs.devpki import write_private
from eid_gateway.wallet_sim.persons import TestPerson, default_persons
from eid_gateway.wallet_sim.pid_provider import (
    PID_LIFETIME,
    SD_JWT_VC_TYP,
    VCT,
    ProviderKeys,
    StatusList,
    b64url,
    issue_pid,
)

REQUEST_TYP: Final = "oauth-authz-req+jwt"
#: The audience of a request object fetched from request_uri (static wallet metadata).
SELF_ISSUED: Final = "https://self-issued.me/v2"
SUPPORTED_ENC: Final = ("A128GCM", "A256GCM")
#: How long the wallet waits for the verifier's endpoints (generous: CI machines are slow).
HTTP_TIMEOUT: Final = 30.0
#: A PID type no verifier of this project accepts (Tamper.WRONG_VCT).
OTHER_VCT: Final = "urn:eudi:pid:xx:1"


class Tamper(enum.Enum):
    """One way to misbehave, for one negative test each (the person choice covers expired and revoked)."""

    FORGED_ISSUER = "forged_issuer"  # issuer JWT re-signed by a key not in the trust list, same x5c
    UNTRUSTED_CA = "untrusted_ca"  # the PID comes from another CA's provider
    WRONG_NONCE = "wrong_nonce"
    WRONG_AUDIENCE = "wrong_audience"
    REPLAY = "replay"  # re-send this wallet's previous presentation (its KB-JWT for an earlier nonce)
    TAMPERED_DISCLOSURE = "tampered_disclosure"  # one byte of a disclosure changed (KB-JWT over the result)
    DUPLICATED_DISCLOSURE = "duplicated_disclosure"  # one disclosure sent twice (KB-JWT over the result)
    STALE_KB = "stale_kb"  # KB-JWT iat one hour ago
    KB_WRONG_KEY = "kb_wrong_key"  # KB-JWT signed by a key other than the credential's cnf.jwk
    NO_KEY_BINDING = "no_key_binding"  # the presentation without a KB-JWT (ends in "~")
    WRONG_VCT = "wrong_vct"  # a genuine PID of a type the verifier does not accept
    CANCEL = "cancel"  # error=access_denied, encrypted like a response
    CANCEL_UNENCRYPTED = "cancel_unencrypted"  # error=access_denied as plain form fields


class WalletRequestError(Exception):
    """The verifier's request is not one this wallet answers (bad URL, signature, client_id, query)."""


@dataclass(frozen=True)
class PresentResult:
    """What the verifier answered: HTTP status and, for same-device, the ``redirect_uri`` (taken from a
    JSON answer of any status: a refusal may carry one too; only http(s) URLs).

    ``form`` is the body that was posted (a test may post it again: a replay into the same flow);
    ``presentation`` the SD-JWT presentation inside it (``None`` for a cancel).
    """

    status: int
    redirect_uri: str | None
    body: str
    response_uri: str
    form: dict[str, str]
    presentation: str | None
    #: the claim paths the verifier's DCQL query asked for (what the wallet showed the holder)
    requested_paths: tuple[tuple[Any, ...], ...] = ()


@dataclass(frozen=True)
class VerifierRequest:
    """The checked request object's claims the wallet acts on."""

    client_id: str
    response_uri: str
    nonce: str
    state: str | None
    dcql: dict[str, Any]
    response_key: ECKey
    enc: str
    claims: dict[str, Any]

    def credential_query(self) -> dict[str, Any]:
        """The one PID query (``dc+sd-jwt`` with our ``vct``); WalletRequestError if there is none."""
        queries = self.dcql.get("credentials")
        for query in queries if isinstance(queries, list) else []:
            if not isinstance(query, dict) or query.get("format") != SD_JWT_VC_TYP:
                continue
            vcts = _obj(query.get("meta")).get("vct_values")
            if isinstance(vcts, list) and VCT not in vcts:
                continue
            if not isinstance(query.get("id"), str):
                raise WalletRequestError("credential query without id")
            return query
        raise WalletRequestError(f"the DCQL query asks for no {SD_JWT_VC_TYP} credential of type {VCT}")

    def requested_paths(self) -> list[list[Any]]:
        """The claim paths the query asks for (an empty list: the credential with no claim disclosed)."""
        claims = self.credential_query().get("claims") or []
        if not isinstance(claims, list):
            raise WalletRequestError("the credential query's claims are not a list")
        paths: list[list[Any]] = []
        for claim in claims:
            path = claim.get("path") if isinstance(claim, dict) else None
            if not isinstance(path, list) or not path:
                raise WalletRequestError("a claims query without a path")
            paths.append(path)
        return paths


def client_id_for_cert(der: bytes) -> str:
    """``x509_hash:`` + base64url(SHA-256(DER leaf certificate)) (OpenID4VP 1.0, section 5.9.3)."""
    return "x509_hash:" + b64url(hashlib.sha256(der).digest())


def parse_invocation(url: str) -> tuple[str, str]:
    """(client_id, request_uri) of a wallet invocation URL."""
    query = parse_qs(urlsplit(url).query)
    client_ids, request_uris = query.get("client_id", []), query.get("request_uri", [])
    if len(client_ids) != 1 or len(request_uris) != 1:
        raise WalletRequestError("the invocation URL needs exactly one client_id and one request_uri")
    return client_ids[0], request_uris[0]


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (a malformed member reads as absent)."""
    return value if isinstance(value, dict) else {}


def check_request_object(token: str, *, client_id: str, now: int) -> VerifierRequest:
    """Verify the request object (signature by its x5c leaf, x509_hash client_id, claims) and read it."""
    try:
        header_b64 = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except (ValueError, IndexError) as exc:
        raise WalletRequestError(f"the request object is not a JWS: {exc}") from None
    if not isinstance(header, dict) or header.get("typ") != REQUEST_TYP or header.get("alg") != "ES256":
        raise WalletRequestError(f"request object header must have typ {REQUEST_TYP} and alg ES256")
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        raise WalletRequestError("request object without x5c")
    try:
        der = base64.b64decode(x5c[0], validate=True)
        leaf = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise WalletRequestError(f"x5c[0] is no certificate: {exc}") from None
    if client_id_for_cert(der) != client_id:
        raise WalletRequestError("client_id does not match the hash of the request object's certificate")
    public = leaf.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise WalletRequestError("the request object's certificate holds no EC key")
    try:  # jwcrypto (the sd-jwt library's JOSE): joserfc refuses headers over 512 bytes, and x5c is larger
        verified = JWS()
        verified.deserialize(token, jwk.JWK.from_pyca(public), alg="ES256")
        claims = json.loads(verified.payload)
    except (JWException, ValueError) as exc:
        raise WalletRequestError(f"request object signature invalid: {exc}") from None
    if not isinstance(claims, dict):
        raise WalletRequestError("request object payload is not an object")
    expected = {"client_id": client_id, "response_type": "vp_token", "response_mode": "direct_post.jwt"}
    for name, value in expected.items():
        if claims.get(name) != value:
            raise WalletRequestError(f"request object: {name} must be {value!r}")
    if claims.get("aud", SELF_ISSUED) != SELF_ISSUED:
        raise WalletRequestError(f"request object: aud must be {SELF_ISSUED!r} (OpenID4VP 1.0, section 5.8)")
    exp = claims.get("exp")
    if isinstance(exp, int) and exp < now:
        raise WalletRequestError("request object expired")
    for name in ("response_uri", "nonce"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise WalletRequestError(f"request object without {name}")
    dcql = claims.get("dcql_query")
    if not isinstance(dcql, dict):
        raise WalletRequestError("request object without dcql_query")
    metadata = _obj(claims.get("client_metadata"))
    keys = _obj(metadata.get("jwks")).get("keys")
    keys = keys if isinstance(keys, list) else []
    enc_keys = [k for k in keys if isinstance(k, dict) and k.get("kty") == "EC" and k.get("use", "enc") == "enc"]
    if not enc_keys:
        raise WalletRequestError("client_metadata.jwks has no EC encryption key")
    try:
        response_key = ECKey.import_key(enc_keys[0])
    except (JoseError, ValueError) as exc:
        raise WalletRequestError(f"the verifier's encryption key is unusable: {exc}") from None
    offered = metadata.get("encrypted_response_enc_values_supported") or ["A128GCM"]
    enc = next((e for e in offered if e in SUPPORTED_ENC), None) if isinstance(offered, list) else None
    if enc is None:
        raise WalletRequestError(f"no supported content encryption offered ({offered})")
    state = claims.get("state")
    return VerifierRequest(
        client_id=client_id,
        response_uri=claims["response_uri"],
        nonce=claims["nonce"],
        state=state if isinstance(state, str) else None,
        dcql=dcql,
        response_key=response_key,
        enc=enc,
        claims=claims,
    )


def _b64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def disclosed_claims(issuance: str) -> dict[str, Any]:
    """The credential's claims with every disclosure of ``issuance`` put in place (the holder's own view;
    unverified: the wallet only uses it to choose what to disclose)."""
    jwt_part, *disclosures = [d for d in issuance.split("~") if d]
    by_digest = {b64url(hashlib.sha256(d.encode("ascii")).digest()): _b64json(d) for d in disclosures}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: resolve(v) for k, v in value.items() if k not in ("_sd", "_sd_alg")}
            for digest in value.get("_sd", []):
                if digest in by_digest:
                    _, name, inner = by_digest[digest]
                    out[name] = resolve(inner)
            return out
        if isinstance(value, list):
            items = []
            for item in value:
                if isinstance(item, dict) and set(item) == {"..."}:
                    if item["..."] in by_digest:
                        items.append(resolve(by_digest[item["..."]][1]))
                else:
                    items.append(resolve(item))
            return items
        return value

    claims: dict[str, Any] = resolve(_b64json(jwt_part.split(".")[1]))
    return claims


def _everything(value: Any) -> Any:
    """The holder's selection that discloses ``value`` whole (every nested disclosure)."""
    if isinstance(value, dict):
        return {k: _everything(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_everything(v) for v in value]
    return True


def selection(claims: dict[str, Any], paths: list[list[Any]]) -> dict[str, Any]:
    """The ``claims_to_disclose`` structure of ``SDJWTHolder`` for the DCQL claim paths.

    A path naming an object discloses the object with all its members; a path into an object only the
    named member (and the object's own disclosure). ``None`` in a path selects all array elements.
    A path the PID has no claim for is skipped (this wallet answers with what it holds).
    """
    chosen: dict[str, Any] = {}
    for path in paths:
        _select(chosen, claims, path)
    return chosen


def _select(chosen: Any, value: Any, path: list[Any]) -> None:
    head, rest = path[0], path[1:]
    if isinstance(value, dict) and isinstance(head, str) and head in value and isinstance(chosen, dict):
        if not rest:
            chosen[head] = _everything(value[head])
            return
        inner = value[head]
        if chosen.get(head) is None or chosen.get(head) is True:
            chosen[head] = [None] * len(inner) if isinstance(inner, list) else {}
        _select(chosen[head], inner, rest)
    elif isinstance(value, list) and isinstance(chosen, list) and (head is None or isinstance(head, int)):
        indices = range(len(value)) if head is None else [head] if 0 <= head < len(value) else []
        for i in indices:
            if not rest:
                chosen[i] = _everything(value[i])
            else:
                if not isinstance(chosen[i], dict | list):
                    chosen[i] = [None] * len(value[i]) if isinstance(value[i], list) else {}
                _select(chosen[i], value[i], rest)


class _Holder(SDJWTHolder):  # type: ignore[misc]
    """The reference library's holder, with two hooks for the tamper cases: the disclosures may be
    edited before the KB-JWT is made over them, and the KB-JWT's ``iat`` may be set."""

    hs_disclosures: list[str]
    key_binding_jwt_payload: dict[str, Any]

    def __init__(
        self,
        issuance: str,
        *,
        edit: Callable[[list[str]], list[str]] | None = None,
        kb_iat: int | None = None,
    ) -> None:
        super().__init__(issuance)
        self._edit = edit
        self._kb_iat = kb_iat

    def _create_key_binding_jwt(
        self, nonce: str, aud: str, presentation_hash: str, holder_key: jwk.JWK, sign_alg: str | None = None
    ) -> None:
        if self._edit is not None:
            self.hs_disclosures = self._edit(list(self.hs_disclosures))
            combined = self._combine(self.serialized_sd_jwt, *self.hs_disclosures, "")
            presentation_hash = self._b64hash(combined.encode("ascii"))
        super()._create_key_binding_jwt(nonce, aud, presentation_hash, holder_key, sign_alg)
        if self._kb_iat is not None:
            payload = dict(self.key_binding_jwt_payload, iat=self._kb_iat)
            self.key_binding_jwt_payload = payload
            self.key_binding_jwt = JWS(payload=json.dumps(payload))
            self.key_binding_jwt.add_signature(
                holder_key, alg=sign_alg or "ES256", protected=json.dumps(self.key_binding_jwt_header)
            )
            self.serialized_key_binding_jwt = self.key_binding_jwt.serialize(compact=True)


def _tamper_one_byte(disclosures: list[str]) -> list[str]:
    """Change one letter of the value of the first disclosure whose value is plain ASCII text: the
    disclosure still decodes to valid JSON, but its digest is in no ``_sd`` array."""
    for i, disclosure in enumerate(disclosures):
        raw = bytearray(base64.urlsafe_b64decode(disclosure + "=" * (-len(disclosure) % 4)))
        value = json.loads(raw)[-1]
        if isinstance(value, str) and value.isascii() and b"\\" not in raw and any(c.isalpha() for c in value):
            closing = raw.rindex(b'"')
            at = next(j for j in range(closing - 1, 0, -1) if chr(raw[j]).isalpha())
            raw[at] = ord("X") if raw[at] != ord("X") else ord("Y")
            return [*disclosures[:i], b64url(bytes(raw)), *disclosures[i + 1 :]]
    raise WalletRequestError("no text disclosure to tamper with: ask for a claim such as given_name")


def _duplicate_one(disclosures: list[str]) -> list[str]:
    if not disclosures:
        raise WalletRequestError("no disclosure to duplicate: ask for a claim such as given_name")
    return [*disclosures, disclosures[0]]


def _forge_issuer_signature(issuance: str) -> str:
    """The same issuer JWT (header with the real x5c, payload) signed by a key the trust list does not know."""
    jwt_part, sep, rest = issuance.partition("~")
    header_b64, payload_b64, _ = jwt_part.split(".")
    forger = ec.generate_private_key(ec.SECP256R1())
    key = ECKey.import_key(forger)
    signed = jws.serialize_compact(
        json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4))),
        base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)),
        key,
        algorithms=["ES256"],
    )
    return f"{header_b64}.{payload_b64}.{signed.split('.')[2]}{sep}{rest}"


@dataclass
class _Holding:
    """One person's credential in this wallet: holder key and the issued PID."""

    person: TestPerson
    holder_key: jwk.JWK
    issuance: str
    last_presentation: str | None = None


@dataclass
class TestWallet:
    """A wallet holding one PID per test person, issued by ``keys`` at construction.

    Use :meth:`open` (keys and holder keys from a directory, so the wallet-sim process and an in-process
    wallet with the same directory hold the same keys: the same pseudonyms).
    """

    __test__ = False  # not a pytest test class

    keys: ProviderKeys
    holder_keys: dict[str, jwk.JWK]
    status_uri: str | None
    persons: dict[str, TestPerson] = field(default_factory=default_persons)
    clock: Callable[[], float] = time.time
    holdings: dict[str, _Holding] = field(init=False, default_factory=dict)
    _rogue: ProviderKeys | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        now = int(self.clock())
        for key, person in self.persons.items():
            holder = self.holder_keys.get(key) or jwk.JWK.generate(kty="EC", crv="P-256")
            self.holder_keys[key] = holder
            issuance = issue_pid(
                person,
                holder,
                keys=self.keys,
                now=now,
                expires_in=PID_LIFETIME,
                status_uri=self.status_uri,
                status_idx=person.status_idx if self.status_uri else None,
            )
            self.holdings[key] = _Holding(person, holder, issuance)

    @classmethod
    def open(cls, directory: Path, *, status_uri: str | None, clock: Callable[[], float] = time.time) -> TestWallet:
        """The wallet of ``directory``: provider keys and holder keys (0600 files) made there on first use."""
        keys = ProviderKeys.load_or_create(directory)
        persons = default_persons()
        holder_keys: dict[str, jwk.JWK] = {}
        for key in persons:
            path = directory / f"holder-{key}.jwk"
            if path.exists():
                holder_keys[key] = jwk.JWK.from_json(path.read_text("utf-8"))
            else:
                made = jwk.JWK.generate(kty="EC", crv="P-256")
                write_private(path, made.export_private().encode("utf-8"))
                holder_keys[key] = made
        return cls(keys, holder_keys, status_uri, persons, clock)

    def status_list(self, ttl: int = 10) -> StatusList:
        """A status list with this wallet's revoked persons set (the process serves it at ``status_uri``)."""
        if self.status_uri is None:
            raise ValueError("this wallet's PIDs name no status list")
        status = StatusList(self.status_uri, ttl=ttl)
        for person in self.persons.values():
            status.set(person.status_idx, 1 if person.revoked else 0)
        return status

    def holding(self, person: str) -> _Holding:
        try:
            return self.holdings[person]
        except KeyError:
            raise WalletRequestError(f"no test person {person!r} (known: {', '.join(self.holdings)})") from None

    def holder_thumbprint(self, person: str) -> str:
        """RFC 7638 thumbprint (SHA-256, base64url) of the person's holder key: the gateway's wallet id."""
        thumbprint: str = self.holding(person).holder_key.thumbprint()
        return thumbprint

    def _reissued(self, holding: _Holding, *, untrusted: bool = False, vct: str = VCT) -> str:
        """The person's PID issued again: by another CA's provider, or with another type."""
        if untrusted and self._rogue is None:
            self._rogue = ProviderKeys.generate("untrusted test PID provider")
        return issue_pid(
            holding.person,
            holding.holder_key,
            keys=self._rogue if untrusted and self._rogue is not None else self.keys,
            now=int(self.clock()),
            status_uri=self.status_uri,
            status_idx=holding.person.status_idx if self.status_uri else None,
            vct=vct,
        )

    def presentation(self, request: VerifierRequest, person: str, tamper: Tamper | None = None) -> str:
        """The SD-JWT presentation (with KB-JWT) answering ``request`` as ``person``, tampered as asked."""
        holding = self.holding(person)
        if tamper is Tamper.REPLAY:
            if holding.last_presentation is None:
                raise WalletRequestError(f"nothing to replay: {person} has presented nothing yet")
            return holding.last_presentation
        issuance = holding.issuance
        if tamper is Tamper.FORGED_ISSUER:
            issuance = _forge_issuer_signature(issuance)
        elif tamper is Tamper.UNTRUSTED_CA:
            issuance = self._reissued(holding, untrusted=True)
        elif tamper is Tamper.WRONG_VCT:
            issuance = self._reissued(holding, vct=OTHER_VCT)
        edit = {Tamper.TAMPERED_DISCLOSURE: _tamper_one_byte, Tamper.DUPLICATED_DISCLOSURE: _duplicate_one}.get(
            tamper  # type: ignore[arg-type]
        )
        now = int(self.clock())
        holder = _Holder(issuance, edit=edit, kb_iat=now - 3600 if tamper is Tamper.STALE_KB else now)
        nonce = (
            b64url(hashlib.sha256(request.nonce.encode()).digest()) if tamper is Tamper.WRONG_NONCE else request.nonce
        )
        audience = request.client_id
        if tamper is Tamper.WRONG_AUDIENCE:
            audience = "x509_hash:" + b64url(hashlib.sha256(b"another verifier").digest())
        chosen = selection(disclosed_claims(issuance), request.requested_paths())
        if tamper is Tamper.NO_KEY_BINDING:  # the library makes no KB-JWT without nonce, aud and key
            holder.create_presentation(chosen)
            unbound: str = holder.sd_jwt_presentation
            return unbound
        signing_key = jwk.JWK.generate(kty="EC", crv="P-256") if tamper is Tamper.KB_WRONG_KEY else holding.holder_key
        holder.create_presentation(chosen, nonce=nonce, aud=audience, holder_key=signing_key, sign_alg="ES256")
        presentation: str = holder.sd_jwt_presentation
        if tamper is None:
            holding.last_presentation = presentation
        return presentation

    def response_form(
        self, request: VerifierRequest, person: str, tamper: Tamper | None = None
    ) -> tuple[dict[str, str], str | None]:
        """The form body POSTed to ``response_uri`` (``response=<JWE>``, or plain error fields) and the
        presentation inside it (``None`` for a cancel)."""
        payload: dict[str, Any]
        presentation: str | None = None
        if tamper in (Tamper.CANCEL, Tamper.CANCEL_UNENCRYPTED):
            payload = {"error": "access_denied", "error_description": "the holder declined"}
        else:
            presentation = self.presentation(request, person, tamper)
            query_id = request.credential_query()["id"]
            payload = {"vp_token": {query_id: [presentation]}}
        if request.state is not None:
            payload["state"] = request.state
        if tamper is Tamper.CANCEL_UNENCRYPTED:
            return {k: str(v) for k, v in payload.items()}, None
        header = {"alg": "ECDH-ES", "enc": request.enc}
        kid = request.response_key.kid
        if kid:
            header["kid"] = kid
        token = jwe.encrypt_compact(header, json.dumps(payload).encode("utf-8"), request.response_key)
        return {"response": token}, presentation

    async def fetch_request(self, session: aiohttp.ClientSession, invocation_url: str) -> VerifierRequest:
        """GET the request object named by the invocation URL and check it."""
        client_id, request_uri = parse_invocation(invocation_url)
        async with session.get(request_uri) as response:
            text = await response.text()
            if response.status != 200:
                raise WalletRequestError(f"request_uri answered {response.status}")
        return check_request_object(text.strip(), client_id=client_id, now=int(self.clock()))

    async def present(
        self,
        invocation_url: str,
        *,
        person: str,
        tamper: Tamper | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> PresentResult:
        """Answer the request behind ``invocation_url`` as ``person`` and return what the verifier said."""
        own = session is None
        client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        try:
            request = await self.fetch_request(client, invocation_url)
            form, presentation = self.response_form(request, person, tamper)
            async with client.post(request.response_uri, data=form, allow_redirects=False) as response:
                body = await response.text()
                status = response.status
        finally:
            if own:
                await client.close()
        redirect_uri: str | None = None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        # a verifier may send the browser on after a refusal too (400 with redirect_uri): the page follows it
        uri = answer.get("redirect_uri") if isinstance(answer, dict) else None
        if isinstance(uri, str) and uri.startswith(("https://", "http://")):
            redirect_uri = uri
        return PresentResult(
            status=status,
            redirect_uri=redirect_uri,
            body=body,
            response_uri=request.response_uri,
            form=form,
            presentation=presentation,
            requested_paths=tuple(tuple(p) for p in request.requested_paths()),
        )

    async def present_from_qr(self, png_path: Path, *, person: str, tamper: Tamper | None = None) -> PresentResult:
        """Read the invocation URL from a QR code image (``zbarimg``) and present as :meth:`present` does."""
        return await self.present(await read_qr(png_path), person=person, tamper=tamper)


async def read_qr(png_path: Path) -> str:
    """The text of the one QR code in an image, decoded by ``zbarimg`` (Debian package zbar-tools)."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        raise WalletRequestError("zbarimg is not installed (Debian package zbar-tools)")
    process = await asyncio.create_subprocess_exec(
        zbarimg,
        "--quiet",
        "--raw",
        "-Sdisable",
        "-Sqrcode.enable",
        str(png_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=HTTP_TIMEOUT)
    lines = [line for line in out.decode("utf-8", "replace").splitlines() if line.strip()]
    if process.returncode != 0 or len(lines) != 1:
        raise WalletRequestError(f"no single QR code in {png_path} (zbarimg: {err.decode(errors='replace').strip()})")
    return lines[0].strip()
