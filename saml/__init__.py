"""A hardened SAML 2.0 toolkit (sans-I/O): safe XML, XML-DSig/XML-Enc via xmlsec, messages, bindings,
metadata. Usable by relying services on its own; it imports nothing from the gateway.

Typical SP use::

    from saml import ResponseValidator, parse_metadata, parse_post

    idp = parse_metadata(idp_metadata_xml)
    validator = ResponseValidator.from_metadata(idp, sp_entity_id=..., acs_url=...)
    result = validator.validate(xml)        # raises a precise SamlError subclass on any defect
"""

from saml.algorithms import DEFAULT_POLICY, LEGACY_POLICY, AlgorithmPolicy
from saml.bindings import (
    AUTOSUBMIT_SCRIPT,
    RedirectMessage,
    check_relay_state,
    parse_post,
    decode_redirect,
    parse_redirect,
    verify_redirect,
    post_fields,
    post_form,
    redirect_url,
)
from saml.dsig import has_signature, sign_enveloped, verify_enveloped
from saml.errors import (
    BindingError,
    EncryptionError,
    MessageError,
    MetadataError,
    SamlError,
    SignatureError,
    ValidationError,
    XmlSecurityError,
)
from saml.keys import KeyPair, generate_key_pair, load_certificate, load_certificates, load_key_pair
from saml.messages import (
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    CM_BEARER,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    STATUS_AUTHN_FAILED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    STATUS_SUCCESS,
    Assertion,
    Attribute,
    AuthnRequest,
    AuthnStatement,
    Conditions,
    LogoutRequest,
    LogoutResponse,
    NameID,
    NameIDPolicy,
    RequestedAuthnContext,
    Response,
    Status,
    Subject,
    SubjectConfirmation,
    build_assertion,
    build_authn_request,
    build_logout_request,
    build_logout_response,
    build_response,
    new_id,
    parse_assertion,
    parse_authn_request,
    parse_logout_request,
    parse_logout_response,
    parse_response,
    sign_message,
)
from saml.metadata import (
    Endpoint,
    EntityDescriptor,
    IDPSSODescriptor,
    KeyDescriptor,
    SPSSODescriptor,
    build_metadata,
    parse_metadata,
)
from saml.stores import (
    InMemoryReplayCache,
    InMemoryRequestStore,
    ReplayCache,
    RequestStore,
    SqliteReplayCache,
    SqliteRequestStore,
)
from saml.validate import ResponseValidator, ValidatedResponse, verify_authn_request
from saml.xml import parse_xml, to_bytes
from saml.xmlenc import decrypt_assertion, encrypt_assertion

__all__ = [
    "DEFAULT_POLICY", "LEGACY_POLICY", "AlgorithmPolicy",
    "AUTOSUBMIT_SCRIPT", "RedirectMessage", "check_relay_state", "parse_post", "parse_redirect", "decode_redirect", "verify_redirect", "post_fields", "post_form", "redirect_url",
    "has_signature", "sign_enveloped", "verify_enveloped",
    "BindingError", "EncryptionError", "MessageError", "MetadataError", "SamlError", "SignatureError",
    "ValidationError", "XmlSecurityError",
    "KeyPair", "generate_key_pair", "load_certificate", "load_certificates", "load_key_pair",
    "BINDING_HTTP_POST", "BINDING_HTTP_REDIRECT", "CM_BEARER", "NAMEID_PERSISTENT", "NAMEID_TRANSIENT",
    "STATUS_AUTHN_FAILED", "STATUS_REQUESTER", "STATUS_RESPONDER", "STATUS_SUCCESS",
    "Assertion", "Attribute", "AuthnRequest", "AuthnStatement", "Conditions", "LogoutRequest",
    "LogoutResponse", "NameID", "NameIDPolicy", "RequestedAuthnContext", "Response", "Status", "Subject",
    "SubjectConfirmation", "build_assertion", "build_authn_request", "build_logout_request",
    "build_logout_response", "build_response", "new_id", "parse_assertion", "parse_authn_request",
    "parse_logout_request", "parse_logout_response", "parse_response", "sign_message",
    "Endpoint", "EntityDescriptor", "IDPSSODescriptor", "KeyDescriptor", "SPSSODescriptor",
    "build_metadata", "parse_metadata",
    "InMemoryReplayCache", "InMemoryRequestStore", "ReplayCache", "RequestStore", "SqliteReplayCache",
    "SqliteRequestStore",
    "ResponseValidator", "ValidatedResponse", "verify_authn_request",
    "parse_xml", "to_bytes",
    "decrypt_assertion", "encrypt_assertion",
]
