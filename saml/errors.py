"""Exception types of the `saml` toolkit.

Every failure has its own type so that callers (and tests named after attacks) can tell *why* a message
was refused; ``code`` is a short stable identifier safe to show to a relying service or log.
"""

from __future__ import annotations


class SamlError(Exception):
    """Base of every error raised by the toolkit."""

    code = "saml_error"


class XmlSecurityError(SamlError):
    """The XML document itself is unacceptable (DOCTYPE, entities, too large, too deep, not well-formed)."""

    code = "xml_rejected"


class SignatureError(SamlError):
    """An XML or binding signature is missing, malformed, forged or uses a refused algorithm/key."""

    code = "signature_invalid"


class EncryptionError(SamlError):
    """Encrypting or decrypting failed, or an encryption algorithm was refused."""

    code = "encryption_invalid"


class MessageError(SamlError):
    """A SAML message does not have the structure the schema requires."""

    code = "message_malformed"


class ValidationError(SamlError):
    """A well-formed, correctly signed message fails a protocol check (time, audience, replay, ...)."""

    code = "validation_failed"


class BindingError(SamlError):
    """An HTTP binding (Redirect or POST) carries a malformed or unacceptable message."""

    code = "binding_invalid"


class MetadataError(SamlError):
    """SAML metadata is malformed, unsigned where a signature is required, or expired."""

    code = "metadata_invalid"
