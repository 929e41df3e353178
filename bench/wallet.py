"""Benchmark: the wallet verifier's CPU per presentation against the raw ES256 signature cost, same run.

One presentation = a PID in SD-JWT VC (issued and presented by the IETF reference library ``sd-jwt``
through the verifier tests' builder, tests/wallet/builder.py, so the input is not the verifier's own),
the x5c chain leaf <- CA, every claim disclosed (20 disclosures) or only the family name, and a KB-JWT.
Measured:

* ``verify_presentation``: issuer signature, disclosures, KB-JWT signature: two P-256 verifications are
  its floor once the trust list has validated the issuer's x5c chain (it remembers validated chains
  inside their validity); a chain seen for the first time adds path validation (one more verification);
* ``verify_wallet_response``: the same plus opening the ``direct_post.jwt`` JWE (ECDH-ES + A128GCM);
* the reference library's own verifier (``SDJWTVerifier``, no chain, no vct/validity checks) for scale;
* raw ``cryptography`` ES256 verify of the issuer JWT's signing input, and ECDH on P-256.

CPU time (``time.process_time``) per operation, best of ``--rounds`` interleaved rounds.
Run: ``.venv/bin/python bench/wallet.py [--n 300] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwe
from joserfc.jwk import ECKey
from jwcrypto import jwk
from sd_jwt.verifier import SDJWTVerifier

from eid_gateway.wallet.jose import b64url_decode
from eid_gateway.wallet.request import new_response_key
from eid_gateway.wallet.sdjwt import verify_presentation
from eid_gateway.wallet.trust import TrustList
from eid_gateway.wallet.verifier import verify_wallet_response
from eid_gateway.wallet_sim.pid_provider import ProviderKeys

# the repository root, for the verifier tests' presentation builder (Erika's PID, issued and presented by sd-jwt)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.wallet.builder import AUDIENCE, NONCE, VCT, Holder, issue, present  # noqa: E402


def cpu_per_op(fn: Callable[[], object], n: int) -> float:
    """CPU microseconds per call (process time, so other processes on the machine do not count)."""
    fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best is reported")
    args = parser.parse_args()

    provider = ProviderKeys.generate()  # the test PID provider: CA, issuer certificate named ISSUER_ID
    ca, issuer = provider.ca, provider.issuer
    trust = TrustList([ca.certificate])
    holder = Holder()
    issuance = issue(issuer, holder, exp=int(time.time()) + 86400, chain=[issuer.certificate, ca.certificate])
    presentations = {
        "all 20 disclosures": present(issuance, holder, nonce=NONCE, aud=AUDIENCE),
        "family_name only": present(issuance, holder, {"family_name": True}, nonce=NONCE, aud=AUDIENCE),
    }
    private, public = new_response_key()
    full = presentations["all 20 disclosures"]
    payload = json.dumps({"vp_token": {"pid": [full]}, "state": "st"}).encode()
    form = {
        "response": jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A128GCM", "kid": public["kid"]}, payload, ECKey.import_key(public)
        )
    }

    # the raw cost: one ES256 verification of the issuer JWT's own signing input, and one ECDH
    issuer_jwt = full.split("~", 1)[0]
    signing_input = issuer_jwt.rsplit(".", 1)[0].encode()
    raw_sig = b64url_decode(issuer_jwt.rsplit(".", 1)[1])
    der = encode_dss_signature(int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big"))
    issuer_public = issuer.certificate.public_key()
    assert isinstance(issuer_public, ec.EllipticCurvePublicKey)
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()
    ours = ec.generate_private_key(ec.SECP256R1())

    def library(presentation: str) -> Callable[[], object]:
        return lambda: SDJWTVerifier(
            presentation, lambda iss, h: jwk.JWK.from_pyca(issuer_public), AUDIENCE, NONCE
        ).get_verified_payload()

    jobs: dict[str, Callable[[], object]] = {
        "raw ES256 verify (cryptography)": lambda: issuer_public.verify(der, signing_input, ec.ECDSA(hashes.SHA256())),
        "raw ECDH P-256 (cryptography)": lambda: ours.exchange(ec.ECDH(), peer),
    }
    for label, presentation in presentations.items():
        jobs[f"verify_presentation, {label}"] = lambda p=presentation: verify_presentation(  # type: ignore[misc]
            p, trust=trust, vct_values=[VCT], nonce=NONCE, audience=AUDIENCE, now=int(time.time())
        )
    jobs["verify_presentation, all 20, first sight of the chain"] = lambda: verify_presentation(
        full, trust=TrustList([ca.certificate]), vct_values=[VCT], nonce=NONCE, audience=AUDIENCE, now=int(time.time())
    )
    jobs["verify_wallet_response (JWE + all 20)"] = lambda: verify_wallet_response(
        form,
        private_jwk_json=private,
        state="st",
        nonce=NONCE,
        client_id=AUDIENCE,
        trust=trust,
        vct_values=[VCT],
        now=int(time.time()),
        status_token=None,
    )
    jobs["sd-jwt library SDJWTVerifier, all 20 (fewer checks)"] = library(full)

    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, fn in jobs.items():
            us = cpu_per_op(fn, args.n)
            best[name] = min(best.get(name, us), us)
    raw = best["raw ES256 verify (cryptography)"]
    print(
        f"CPU per operation, best of {args.rounds} rounds of {args.n} (presentation {len(full)} bytes, x5c leaf + CA)"
    )
    print(f"{'operation':<56} {'µs':>9} {'× raw ES256':>12}")
    for name, us in best.items():
        print(f"{name:<56} {us:>9.1f} {us / raw:>12.2f}")
    floor = 2 * raw
    per = best["verify_presentation, all 20 disclosures"]
    print(
        f"floor of a presentation = 2 ES256 verifications (issuer JWT, KB-JWT; the x5c chain validated once and "
        f"remembered) = {floor:.1f} µs; verify_presentation spends {per - floor:.1f} µs ({(per - floor) / per:.0%}) "
        "beyond it; a chain seen for the first time adds path validation (one more ES256 verification)"
    )


if __name__ == "__main__":
    main()
