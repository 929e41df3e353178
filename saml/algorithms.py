"""Algorithm identifiers (URIs) of XML-DSig / XML-Enc and the allowlist that decides which are accepted.

The policy is the single place where BSI TR-02102 shows up in code: SHA-2 digests, RSA >= 3072 bits or
ECDSA on P-256+ / brainpool curves, AES-GCM for content and RSA-OAEP for key transport. Everything older
(SHA-1, AES-CBC, RSA PKCS#1 v1.5 key transport) is named here only so that it can be refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

# --- signature methods -------------------------------------------------------------------------------
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
# RFC 6931 section 2.3.10: RSASSA-PSS with MGF1 using the same hash, salt length = hash length.
RSA_PSS_SHA256: Final = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
RSA_PSS_SHA384: Final = "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1"
RSA_PSS_SHA512: Final = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1"
ECDSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

# --- digests -----------------------------------------------------------------------------------------
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512: Final = "http://www.w3.org/2001/04/xmlenc#sha512"

# --- canonicalisation and transforms -----------------------------------------------------------------
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_WITH_COMMENTS: Final = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N11: Final = "http://www.w3.org/2006/12/xml-c14n11"
ENVELOPED: Final = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XSLT: Final = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XPATH: Final = "http://www.w3.org/TR/1999/REC-xpath-19991116"
XPATH_FILTER2: Final = "http://www.w3.org/2002/06/xmldsig-filter2"
BASE64_TRANSFORM: Final = "http://www.w3.org/2000/09/xmldsig#base64"

# --- encryption --------------------------------------------------------------------------------------
AES128_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES192_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes192-gcm"
AES256_GCM: Final = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
# XML-Enc 1.1 RSA-OAEP; the MGF is named in an xenc11:MGF child (we always write MGF1 with SHA-256).
RSA_OAEP: Final = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
RSA_OAEP_MGF1P: Final = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
MGF1_SHA1: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha1"
MGF1_SHA256: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha256"
MGF1_SHA384: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha384"
MGF1_SHA512: Final = "http://www.w3.org/2009/xmlenc11#mgf1sha512"
ECDH_ES: Final = "http://www.w3.org/2009/xmlenc11#ECDH-ES"
KW_AES128: Final = "http://www.w3.org/2001/04/xmlenc#kw-aes128"
KW_AES256: Final = "http://www.w3.org/2001/04/xmlenc#kw-aes256"

# --- legacy, refused by default ----------------------------------------------------------------------
RSA_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
ECDSA_SHA1: Final = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
SHA1: Final = "http://www.w3.org/2000/09/xmldsig#sha1"
AES128_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
AES192_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
AES256_CBC: Final = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
TRIPLEDES_CBC: Final = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
RSA_1_5: Final = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"

RSA_SIGNATURES: Final = frozenset(
    {RSA_SHA256, RSA_SHA384, RSA_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512, RSA_SHA1}
)
ECDSA_SIGNATURES: Final = frozenset({ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512, ECDSA_SHA1})

#: Hash name (as ``hashlib`` / ``cryptography`` spell it) behind each signature and digest URI.
HASH_OF: Final[dict[str, str]] = {
    RSA_SHA256: "sha256",
    RSA_SHA384: "sha384",
    RSA_SHA512: "sha512",
    RSA_PSS_SHA256: "sha256",
    RSA_PSS_SHA384: "sha384",
    RSA_PSS_SHA512: "sha512",
    ECDSA_SHA256: "sha256",
    ECDSA_SHA384: "sha384",
    ECDSA_SHA512: "sha512",
    RSA_SHA1: "sha1",
    ECDSA_SHA1: "sha1",
    SHA256: "sha256",
    SHA384: "sha384",
    SHA512: "sha512",
    SHA1: "sha1",
}

#: Curves (cryptography's ``curve.name``) acceptable under TR-02102.
STRONG_CURVES: Final = frozenset(
    {"secp256r1", "secp384r1", "secp521r1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"}
)


@dataclass(frozen=True)
class AlgorithmPolicy:
    """What a verifier/decrypter accepts. Immutable; derive variants with :meth:`legacy` or ``replace``."""

    signature: frozenset[str] = field(
        default=frozenset(
            {RSA_SHA256, RSA_SHA384, RSA_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512}
            | {ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512}
        )
    )
    digest: frozenset[str] = frozenset({SHA256, SHA384, SHA512})
    data_encryption: frozenset[str] = frozenset({AES128_GCM, AES192_GCM, AES256_GCM})
    key_transport: frozenset[str] = frozenset({RSA_OAEP, RSA_OAEP_MGF1P})
    min_rsa_bits: int = 3072
    min_ec_bits: int = 256
    curves: frozenset[str] = STRONG_CURVES

    def legacy(self) -> AlgorithmPolicy:
        """A copy that additionally accepts RSA-2048 keys, AES-CBC and RSA PKCS#1 v1.5 key transport.

        Only for peers that cannot do better yet (BSI's own eID-Server samples still use aes128-cbc +
        rsa-1_5); it must be chosen explicitly per peer, never as a default. SHA-1 stays refused.
        """
        return replace(
            self,
            data_encryption=self.data_encryption | {AES128_CBC, AES192_CBC, AES256_CBC},
            key_transport=self.key_transport | {RSA_1_5},
            min_rsa_bits=min(self.min_rsa_bits, 2048),
        )


DEFAULT_POLICY: Final = AlgorithmPolicy()
LEGACY_POLICY: Final = DEFAULT_POLICY.legacy()
