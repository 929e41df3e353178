"""Benchmark: the embedded eID-Server's PAOS/EAC core against the card + client emulators.

    .venv/bin/python bench/paos.py [--sessions 300]

One session = useID, StartPAOS, EAC1, EAC2 (TA signature, CA token check, SM keys), one Transmit batch
reading every data group with Secure Messaging plus age / place / validity verification and Restricted
Identification, StartPAOSResponse, getResult — all sans-I/O (no HTTP, no TLS). Reported: sessions per
second (whole loop, one core) and CPU milliseconds per session spent in the *server* calls alone (the
emulated card and client do their own ECDH/ECDSA work, which a real deployment does not pay for).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from eid_gateway.eid.messages import OPERATION_NAMES, GetResultRequest, Selection, UseIDRequest
from eid_gateway.eidserver.emulator import ClientEmulator, EmulatedCard, card_files
from eid_gateway.eidserver.server_core import EmbeddedEidServer, EmbeddedServerConfig
from eid_gateway.eidserver.testpki import generate_test_pki
from eid_gateway.simulator.identities import default_identities
from saml.keys import generate_key_pair


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate_test_pki(Path(tmp) / "pki", "https://eid.example.de")
    key = generate_key_pair("ec-p256")
    server = EmbeddedEidServer(EmbeddedServerConfig("https://eid.example.de/paos", key, key.certificate,
                                                    pki.credentials(b"bench" * 8)))
    request = UseIDRequest({n: Selection.REQUIRED for n in OPERATION_NAMES}, age=18, community_id="0276")
    files = card_files(default_identities()["erika"].data)
    server_cpu: list[float] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.sessions):
        spent = 0.0
        t = time.thread_time()
        resp = server.use_id(request)
        spent += time.thread_time() - t
        assert resp.psk is not None and resp.session_id is not None
        client = ClientEmulator(EmulatedCard(list(files)), resp.psk.id)
        body: bytes | None = client.start()
        while body is not None:
            t = time.thread_time()
            answer = server.handle_paos(body, resp.psk.id)
            spent += time.thread_time() - t
            body = client.answer(answer.body)
        t = time.thread_time()
        result = server.get_result(GetResultRequest(resp.session_id, 1))
        spent += time.thread_time() - t
        assert result.result.ok
        server_cpu.append(spent * 1000)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"sessions:                        {args.sessions}")
    print(f"whole loop (server + emulators): {args.sessions / wall:.1f} sessions/s, "
          f"{cpu * 1000 / args.sessions:.2f} CPU ms/session")
    print(f"server only:                     {statistics.mean(server_cpu):.2f} CPU ms/session "
          f"(median {statistics.median(server_cpu):.2f}, p95 {sorted(server_cpu)[int(0.95 * len(server_cpu))]:.2f})"
          f" -> {1000 / statistics.mean(server_cpu):.0f} sessions/s per core")


if __name__ == "__main__":
    main()
