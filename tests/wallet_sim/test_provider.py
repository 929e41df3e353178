"""The test PID provider: its files, its PIDs' claims (the gateway's PID table), the status list's bit order."""

from __future__ import annotations

import base64
import json
import time
import zlib
from datetime import date
from pathlib import Path

import pytest
from jwcrypto import jwk

from eid_gateway.wallet.pid import PID_CLAIMS, age_path
from eid_gateway.wallet_sim.persons import default_persons
from eid_gateway.wallet_sim.pid_provider import (
    ISSUER_ID,
    VCT,
    ProviderError,
    ProviderKeys,
    StatusList,
    issue_pid,
)
from eid_gateway.wallet_sim.wallet import TestWallet, disclosed_claims, selection


def test_provider_files_are_private_and_reused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    made = ProviderKeys.load_or_create(directory)
    assert directory.stat().st_mode & 0o777 == 0o700
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["pid-ca.crt", "pid-ca.key", "pid-issuer.crt", "pid-issuer.key"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in directory.iterdir())
    assert b"DEVELOPMENT ONLY" in (directory / "pid-ca.key").read_bytes()
    again = ProviderKeys.load_or_create(directory)
    assert again.ca_pem == made.ca_pem and again.x5c() == made.x5c()
    wallet = TestWallet.open(directory, status_uri=None)
    assert wallet.holder_thumbprint("erika") == TestWallet.open(directory, status_uri=None).holder_thumbprint("erika")
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in directory.glob("holder-*.jwk"))


def test_a_half_written_provider_is_refused(tmp_path: Path) -> None:
    ProviderKeys.load_or_create(tmp_path)
    (tmp_path / "pid-issuer.key").unlink()
    with pytest.raises(ProviderError, match="part of a PID provider"):
        ProviderKeys.load_or_create(tmp_path)


def test_a_foreign_issuer_certificate_is_refused(tmp_path: Path) -> None:
    ProviderKeys.load_or_create(tmp_path / "a")
    ProviderKeys.load_or_create(tmp_path / "b")
    for suffix in ("key", "crt"):
        (tmp_path / "a" / f"pid-issuer.{suffix}").write_bytes((tmp_path / "b" / f"pid-issuer.{suffix}").read_bytes())
    with pytest.raises(ProviderError, match="not issued by"):
        ProviderKeys.load_or_create(tmp_path / "a")


def test_the_pid_carries_every_claim_of_the_gateways_table() -> None:
    """The wallet's claim names are written independently; here they meet the gateway's PID_CLAIMS."""
    keys = ProviderKeys.generate()
    erika = default_persons(date(2026, 12, 2))["erika"]
    issuance = issue_pid(erika, jwk.JWK.generate(kty="EC", crv="P-256"), keys=keys, now=int(time.time()))
    claims = disclosed_claims(issuance)
    for attribute, paths in PID_CLAIMS.items():
        for path in paths:
            value: object = claims
            for step in path:
                assert isinstance(value, dict) and step in value, (attribute, path)
                value = value[step]
    value = claims
    for step in age_path(18):
        value = value[step]
    assert value is True and claims["age_equal_or_over"]["65"] is False
    assert (claims["iss"], claims["vct"]) == (ISSUER_ID, VCT)
    assert claims["birthdate"] == "1964-08-12" and claims["nationalities"] == ["DE"]
    assert claims["place_of_birth"] == {"locality": "BERLIN"}
    # every personal claim is selectively disclosable: none is in the signed payload in the clear
    payload_b64 = issuance.split("~")[0].split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert set(payload) == {"iss", "iat", "exp", "vct", "cnf", "_sd", "_sd_alg"}
    assert "ERIKA" not in json.dumps(payload)


def test_the_persons() -> None:
    persons = default_persons(date(2026, 12, 2))
    assert list(persons) == ["erika", "andre", "expired", "revoked", "minor"]
    assert persons["minor"].claims["age_equal_or_over"] == {
        "12": True,
        "14": True,
        "16": True,
        "18": False,
        "21": False,
        "65": False,
    }
    assert persons["andre"].claims["nationalities"] == ["AZ"]
    assert persons["andre"].claims["address"]["street_address"] == "EHM-WELK-STRAßE"
    assert "birth_family_name" not in persons["andre"].claims
    assert persons["expired"].expired and persons["revoked"].revoked
    assert len({p.status_idx for p in persons.values()}) == 5


def test_an_expired_pid_ended_yesterday() -> None:
    keys = ProviderKeys.generate()
    now = int(time.time())
    issuance = issue_pid(default_persons()["expired"], jwk.JWK.generate(kty="EC", crv="P-256"), keys=keys, now=now)
    claims = disclosed_claims(issuance)
    assert claims["exp"] == now - 24 * 3600 and claims["iat"] < claims["exp"]


def test_status_list_bits_are_least_significant_first() -> None:
    status = StatusList("https://x.test/status/1", size=16)
    status.set(0, 1)
    status.set(9, 1)
    status.set(15, 1)
    status.set(15, 0)
    keys = ProviderKeys.generate()
    token = status.token(keys, now=1_000_000)
    payload_b64 = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    lst = claims["status_list"]["lst"]
    assert zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4))) == bytes([0b00000001, 0b00000010])
    assert (claims["iat"], claims["exp"], claims["sub"]) == (1_000_000, 1_000_600, "https://x.test/status/1")
    with pytest.raises(IndexError):
        status.set(16, 1)
    with pytest.raises(ValueError):
        status.set(1, 2)


CLAIMS = {
    "given_name": "ERIKA",
    "address": {"locality": "KÖLN", "postal_code": "51147"},
    "nationalities": ["DE", "AT"],
    "age_equal_or_over": {"16": True, "18": True},
}


@pytest.mark.parametrize(
    ("paths", "chosen"),
    [
        ([["given_name"]], {"given_name": True}),
        ([["address"]], {"address": {"locality": True, "postal_code": True}}),
        ([["address", "locality"]], {"address": {"locality": True}}),
        ([["address", "locality"], ["address", "postal_code"]], {"address": {"locality": True, "postal_code": True}}),
        ([["age_equal_or_over", "18"]], {"age_equal_or_over": {"18": True}}),
        ([["nationalities"]], {"nationalities": [True, True]}),
        ([["nationalities", None]], {"nationalities": [True, True]}),
        ([["nationalities", 1]], {"nationalities": [None, True]}),
        (
            [["birth_family_name"], ["address", "street_address"], ["nationalities", 5]],
            {"address": {}, "nationalities": [None, None]},
        ),
        ([], {}),
    ],
)
def test_the_holders_selection_for_dcql_paths(paths: list[list[object]], chosen: dict[str, object]) -> None:
    assert selection(CLAIMS, paths) == chosen


def test_disclosed_claims_resolve_nested_disclosures() -> None:
    keys = ProviderKeys.generate()
    erika = default_persons()["erika"]
    issuance = issue_pid(erika, jwk.JWK.generate(kty="EC", crv="P-256"), keys=keys, now=int(time.time()))
    claims = disclosed_claims(issuance)
    assert claims["address"] == erika.claims["address"] and "_sd" not in json.dumps(claims)
    jwt_part, *disclosures = issuance.split("~")

    def name(d: str) -> object:
        return json.loads(base64.urlsafe_b64decode(d + "=" * (-len(d) % 4)))[1] if d else None

    without_address = "~".join([jwt_part, *(d for d in disclosures if name(d) != "address")])
    assert "address" not in disclosed_claims(without_address)
    assert disclosed_claims(without_address)["given_name"] == "ERIKA"
