"""XML-Enc for SAML assertions: AES-GCM content encryption, RSA-OAEP key transport, via xmlsec.

xmlsec decrypts whatever algorithm a document names, so :func:`decrypt_assertion` reads every
``EncryptionMethod`` itself first and refuses anything outside the policy (AES-CBC and RSA PKCS#1 v1.5
are padding oracles) before a single byte is decrypted. The session key is unwrapped in a separate step
with the caller's keys, so we know exactly which ``EncryptedKey`` was used and with which key.

EC recipients (ECDH-ES key agreement) are not supported, and encrypting to an EC certificate raises
:class:`UnsupportedRecipient`. Tried with the bundled libxmlsec1 1.3.9: it performs ECDH-ES + ConcatKDF +
AES key wrap only between *named, pre-shared* keys; it neither writes the ephemeral originator public key
into ``xenc:OriginatorKeyInfo`` when encrypting nor accepts a ``ds:KeyValue`` there when decrypting, so
the ephemeral-static exchange other implementations send (e.g. eIDAS nodes) cannot be driven through
python-xmlsec. Such EncryptedKeys (EncryptionMethod kw-aes*) are refused by the algorithm check.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Final, TypedDict, Unpack

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from saml import algorithms as alg
from saml.algorithms import DEFAULT_POLICY, AlgorithmPolicy
from saml.errors import EncryptionError
from saml.keys import KeyPair, WeakKeyError, cert_b64, check_key_strength, xmlsec_public_key
from saml.xml import MAX_DEPTH, MAX_ELEMENTS, NS

XENC: Final = NS["xenc"]
XENC11: Final = NS["xenc11"]
DS: Final = NS["ds"]
SAML: Final = NS["saml"]
TYPE_ELEMENT: Final = "http://www.w3.org/2001/04/xmlenc#Element"

_ENCRYPTED_DATA: Final = f"{{{XENC}}}EncryptedData"
_ENCRYPTED_KEY: Final = f"{{{XENC}}}EncryptedKey"
_ENCRYPTION_METHOD: Final = f"{{{XENC}}}EncryptionMethod"
_CIPHER_DATA: Final = f"{{{XENC}}}CipherData"
_CIPHER_VALUE: Final = f"{{{XENC}}}CipherValue"
_KEY_INFO: Final = f"{{{DS}}}KeyInfo"
_DIGEST_METHOD: Final = f"{{{DS}}}DigestMethod"
_MGF: Final = f"{{{XENC11}}}MGF"
_ASSERTION: Final = f"{{{SAML}}}Assertion"
_ENCRYPTED_ASSERTION: Final = f"{{{SAML}}}EncryptedAssertion"

_DATA_KEY_BITS: Final[dict[str, int]] = {
    alg.AES128_GCM: 128,
    alg.AES192_GCM: 192,
    alg.AES256_GCM: 256,
    alg.AES128_CBC: 128,
    alg.AES192_CBC: 192,
    alg.AES256_CBC: 256,
}
_KEY_TRANSPORTS: Final = frozenset({alg.RSA_OAEP, alg.RSA_OAEP_MGF1P, alg.RSA_1_5})
_OAEP_DIGESTS: Final = frozenset({alg.SHA1, alg.SHA256, alg.SHA384, alg.SHA512})
_MGFS: Final = frozenset({alg.MGF1_SHA1, alg.MGF1_SHA256, alg.MGF1_SHA384, alg.MGF1_SHA512})


class ForbiddenEncryptionAlgorithm(EncryptionError):
    """An encryption or key-transport algorithm outside the policy (AES-CBC, RSA PKCS#1 v1.5, unknown)."""

    code = "encryption_algorithm_forbidden"


class MalformedEncryptedData(EncryptionError):
    """The encrypted structure is not the one we accept (missing parts, CipherReference, wrong type)."""

    code = "encryption_malformed"


class UnsupportedRecipient(EncryptionError):
    """The recipient's key cannot be used for key transport (EC key, weak RSA key)."""

    code = "encryption_recipient_unsupported"


class NoDecryptionKey(EncryptionError):
    """None of our keys can unwrap the content-encryption key (encrypted for someone else)."""

    code = "decryption_no_key"


class DecryptionFailed(EncryptionError):
    """The content does not decrypt (authentication tag mismatch: tampered or truncated ciphertext)."""

    code = "decryption_failed"


# --- encryption ---------------------------------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, **attrib: str) -> etree._Element:
    return etree.SubElement(parent, tag, attrib)


def _template(recipient: x509.Certificate, data_algorithm: str, key_transport: str, oaep_digest: str) -> etree._Element:
    data = etree.Element(_ENCRYPTED_DATA, {"Type": TYPE_ELEMENT}, nsmap={"xenc": XENC, "ds": DS})
    _sub(data, _ENCRYPTION_METHOD, Algorithm=data_algorithm)
    key_info = _sub(data, _KEY_INFO)
    ek = _sub(key_info, _ENCRYPTED_KEY)
    method = _sub(ek, _ENCRYPTION_METHOD, Algorithm=key_transport)
    _sub(method, _DIGEST_METHOD, Algorithm=oaep_digest)
    if key_transport == alg.RSA_OAEP:
        etree.SubElement(method, _MGF, {"Algorithm": alg.MGF1_SHA256}, nsmap={"xenc11": XENC11})
    elif key_transport != alg.RSA_OAEP_MGF1P:
        del method[0]  # rsa-1_5 (legacy policy only) takes no parameters
    rki = _sub(ek, _KEY_INFO)
    _sub(_sub(rki, f"{{{DS}}}X509Data"), f"{{{DS}}}X509Certificate").text = cert_b64(recipient)
    _sub(_sub(ek, _CIPHER_DATA), _CIPHER_VALUE)
    _sub(_sub(data, _CIPHER_DATA), _CIPHER_VALUE)
    return data


def _check_encryption(
    recipient: x509.Certificate, data_algorithm: str, key_transport: str, policy: AlgorithmPolicy
) -> None:
    if data_algorithm not in policy.data_encryption or data_algorithm not in _DATA_KEY_BITS:
        raise ForbiddenEncryptionAlgorithm(f"data encryption {data_algorithm} is not allowed")
    if key_transport not in policy.key_transport or key_transport not in _KEY_TRANSPORTS:
        raise ForbiddenEncryptionAlgorithm(f"key transport {key_transport} is not allowed")
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise UnsupportedRecipient("only RSA recipients are supported (EC key agreement is not)")
    try:
        check_key_strength(public_key, policy)
    except WeakKeyError as exc:
        raise UnsupportedRecipient(str(exc)) from None


@functools.lru_cache(maxsize=64)
def _recipient_manager(recipient: x509.Certificate) -> xmlsec.KeysManager:
    """A keys manager holding only ``recipient``'s public key, built once per certificate.

    Creating an ``xmlsec.KeysManager`` costs about 8 ms (it sets up an X509 store); encryption only
    reads from it, so one per recipient is reused.
    """
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec_public_key(recipient))
    return manager


class EncryptionOptions(TypedDict, total=False):
    """The algorithm choices of :func:`encrypt_element`, which :func:`encrypt_assertion` passes on; the
    defaults are :func:`encrypt_element`'s."""

    data_algorithm: str
    key_transport: str
    oaep_digest: str
    policy: AlgorithmPolicy


def encrypt_element(
    element: etree._Element,
    recipient: x509.Certificate,
    *,
    data_algorithm: str = alg.AES256_GCM,
    key_transport: str = alg.RSA_OAEP,
    oaep_digest: str = alg.SHA256,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> etree._Element:
    """Encrypt ``element`` for ``recipient``; return ``xenc:EncryptedData`` (which replaces it in its tree).

    A fresh AES key per call is wrapped with RSA-OAEP (MGF1-SHA256, SHA-256 digest) into an
    ``xenc:EncryptedKey`` inside the ``ds:KeyInfo`` of the EncryptedData.
    """
    _check_encryption(recipient, data_algorithm, key_transport, policy)
    if oaep_digest not in _OAEP_DIGESTS:
        raise ForbiddenEncryptionAlgorithm(f"OAEP digest {oaep_digest} is not allowed with {key_transport}")
    template = _template(recipient, data_algorithm, key_transport, oaep_digest)
    parent = element.getparent()
    holder: etree._Element | None = None
    if parent is None:
        # xmlsec replaces the node in its tree; give a detached element a temporary parent.
        holder = etree.Element("holder")
        holder.append(element)
    ctx = xmlsec.EncryptionContext(_recipient_manager(recipient))
    ctx.key = xmlsec.Key.generate(
        xmlsec.constants.KeyDataAes, _DATA_KEY_BITS[data_algorithm], xmlsec.constants.KeyDataTypeSession
    )
    try:
        result = ctx.encrypt_xml(template, element)
    except xmlsec.Error as exc:
        raise EncryptionError(f"encryption failed: {exc}") from None
    if holder is not None:
        holder.remove(result)
    return result


def encrypt_assertion(
    assertion: etree._Element, recipient: x509.Certificate, **options: Unpack[EncryptionOptions]
) -> etree._Element:
    """Encrypt a (signed) ``saml:Assertion`` as :func:`encrypt_element` does (with its ``options``); return
    ``saml:EncryptedAssertion``, put in its place.

    ``key_transport=RSA_OAEP_MGF1P, oaep_digest=SHA1`` is the XML Encryption 1.0 form, for relying services
    whose stack predates XML Encryption 1.1 (e.g. pysaml2 on Debian 12's xmlsec1 1.2.37); the default is
    RSA-OAEP with MGF1-SHA256 and a SHA-256 digest."""
    if assertion.tag != _ASSERTION:
        raise MalformedEncryptedData("only a saml:Assertion can be encrypted as EncryptedAssertion")
    # Encrypt a detached copy: it declares every namespace it uses itself, so that the plaintext parses on
    # its own after decryption (relying services such as pysaml2 parse the decrypted assertion alone).
    standalone = copy.deepcopy(assertion)
    standalone.tail = None
    encrypted = encrypt_element(standalone, recipient, **options)
    wrapper = etree.Element(_ENCRYPTED_ASSERTION, nsmap={"saml": SAML})
    wrapper.append(encrypted)
    parent = assertion.getparent()
    if parent is not None:
        wrapper.tail = assertion.tail
        parent.replace(assertion, wrapper)
    return wrapper


# --- decryption ---------------------------------------------------------------------------------------------


def _method(el: etree._Element, what: str) -> etree._Element:
    methods = [c for c in el if c.tag == _ENCRYPTION_METHOD]
    if len(methods) != 1 or not methods[0].get("Algorithm"):
        raise MalformedEncryptedData(f"{what} needs exactly one EncryptionMethod with an Algorithm")
    return methods[0]


def _check_cipher_value(el: etree._Element, what: str) -> None:
    data = [c for c in el if c.tag == _CIPHER_DATA]
    if len(data) != 1 or [c.tag for c in data[0]] != [_CIPHER_VALUE]:
        # CipherReference would make xmlsec fetch and transform external data: never.
        raise MalformedEncryptedData(f"{what} must carry exactly one inline CipherValue")


def _check_key_transport(ek: etree._Element, policy: AlgorithmPolicy) -> None:
    method = _method(ek, "EncryptedKey")
    name = method.get("Algorithm", "")
    if name not in policy.key_transport:
        raise ForbiddenEncryptionAlgorithm(f"key transport {name} is not allowed")
    for param in method:
        if param.tag == _DIGEST_METHOD:
            if param.get("Algorithm") not in _OAEP_DIGESTS:
                raise ForbiddenEncryptionAlgorithm("OAEP digest is not allowed")
        elif param.tag == _MGF:
            if name != alg.RSA_OAEP or param.get("Algorithm") not in _MGFS:
                raise ForbiddenEncryptionAlgorithm("OAEP mask generation function is not allowed")
        elif param.tag != f"{{{XENC}}}OAEPparams":
            raise MalformedEncryptedData("unexpected parameter of the key transport method")
    _check_cipher_value(ek, "EncryptedKey")


def _encrypted_keys(enc_assertion: etree._Element, data: etree._Element) -> list[etree._Element]:
    """EncryptedKeys inside EncryptedData/KeyInfo, or as siblings in EncryptedAssertion (both in SAML)."""
    keys: list[etree._Element] = []
    for ki in (c for c in data if c.tag == _KEY_INFO):
        keys.extend(c for c in ki if c.tag == _ENCRYPTED_KEY)
    keys.extend(c for c in enc_assertion if c.tag == _ENCRYPTED_KEY)
    return keys


def _check_plaintext(assertion: etree._Element) -> None:
    """Give decrypted content the guarantees parse_xml gives (no comments/PIs/entities, bounded size)."""
    count = 0
    for el in assertion.iter():
        count += 1
        if isinstance(el, etree._Entity):
            raise MalformedEncryptedData("decrypted content contains an entity reference")
    if count > MAX_ELEMENTS:
        raise MalformedEncryptedData("decrypted content is too large")
    # Comments could split an identifier's text (NameID truncation); drop them as the parser does.
    etree.strip_tags(assertion, etree.Comment, etree.ProcessingInstruction)
    depth = 0
    for event, _ in etree.iterwalk(assertion, events=("start", "end")):
        depth += 1 if event == "start" else -1
        if depth > MAX_DEPTH:
            raise MalformedEncryptedData("decrypted content is nested too deeply")


def decrypt_assertion(
    encrypted_assertion: etree._Element,
    keys: Sequence[KeyPair],
    *,
    policy: AlgorithmPolicy = DEFAULT_POLICY,
) -> etree._Element:
    """Decrypt ``saml:EncryptedAssertion`` with one of ``keys``; return the ``saml:Assertion`` in its place.

    Every algorithm is checked against ``policy`` before decryption. The assertion still has to pass
    its own signature check afterwards.
    """
    if encrypted_assertion.tag != _ENCRYPTED_ASSERTION:
        raise MalformedEncryptedData("not a saml:EncryptedAssertion")
    datas = [c for c in encrypted_assertion if c.tag == _ENCRYPTED_DATA]
    if len(datas) != 1:
        raise MalformedEncryptedData("EncryptedAssertion needs exactly one EncryptedData")
    data = datas[0]
    if data.get("Type", TYPE_ELEMENT) != TYPE_ELEMENT:
        raise MalformedEncryptedData("EncryptedData must have Type Element")
    data_algorithm = _method(data, "EncryptedData").get("Algorithm", "")
    if data_algorithm not in policy.data_encryption or data_algorithm not in _DATA_KEY_BITS:
        raise ForbiddenEncryptionAlgorithm(f"data encryption {data_algorithm} is not allowed")
    _check_cipher_value(data, "EncryptedData")
    encrypted_keys = _encrypted_keys(encrypted_assertion, data)
    if not encrypted_keys:
        raise MalformedEncryptedData("no EncryptedKey found")
    for ek in encrypted_keys:
        _check_key_transport(ek, policy)

    session_key: bytes | None = None
    for ek in encrypted_keys:
        for kp in keys:
            if not isinstance(kp.private_key, rsa.RSAPrivateKey):
                continue
            ctx = xmlsec.EncryptionContext()
            ctx.key = kp.xmlsec_key
            try:
                raw = ctx.decrypt(ek)
            except xmlsec.Error:
                continue
            if isinstance(raw, bytes) and len(raw) * 8 == _DATA_KEY_BITS[data_algorithm]:
                session_key = raw
                break
        if session_key is not None:
            break
    if session_key is None:
        raise NoDecryptionKey("none of our keys can unwrap the content key")

    ctx = xmlsec.EncryptionContext()
    ctx.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, session_key)
    try:
        ctx.decrypt(data)
    except xmlsec.Error:
        raise DecryptionFailed("the encrypted assertion does not decrypt") from None
    produced = [c for c in encrypted_assertion if c.tag != _ENCRYPTED_KEY]
    if len(produced) != 1 or produced[0].tag != _ASSERTION:
        raise MalformedEncryptedData("decrypted content is not exactly one saml:Assertion")
    assertion = produced[0]
    _check_plaintext(assertion)
    parent = encrypted_assertion.getparent()
    assertion.tail = None
    if parent is not None:
        tail = encrypted_assertion.tail
        parent.replace(encrypted_assertion, assertion)
        assertion.tail = tail
    else:
        encrypted_assertion.remove(assertion)
    return assertion
