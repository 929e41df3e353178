"""The development TLS CA and server certificate of certs/devpki.py."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs.devpki import DEV_MARKER, DevPkiExists, generate_dev_tls, is_dev_certificate, issue_certificate
from certs.loading import load_key_pair_file


def test_generate_dev_tls(tmp_path: Path) -> None:
    made = generate_dev_tls(tmp_path, hosts=("localhost", "127.0.0.1"))
    ca, server = made["eid-tls-ca"], made["simulator-tls"]
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert is_dev_certificate(ca.certificate) and DEV_MARKER in server.certificate.subject.rfc4514_string()
    san = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = server.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    server.certificate.verify_directly_issued_by(ca.certificate)
    loaded = load_key_pair_file(tmp_path / "simulator-tls.key", tmp_path / "simulator-tls.crt")
    assert loaded.certificate == server.certificate and loaded.chain == (ca.certificate,)
    assert (tmp_path / "eid-tls-ca.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(DevPkiExists):
        generate_dev_tls(tmp_path)


def test_client_certificate_usage(tmp_path: Path) -> None:
    ca = generate_dev_tls(tmp_path)["eid-tls-ca"]
    client = issue_certificate(ca, "gateway client", server=False, client=True)
    eku = client.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        client.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
