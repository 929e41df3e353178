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
import cProfile
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from eid_gateway.eid.messages import OPERATION_NAMES, GetResultRequest, Selection, UseIDRequest
from eid_gateway.eidserver.emulator import ClientEmulator, EmulatedCard, card_files
from eid_gateway.eidserver.server_core import EmbeddedEidServer, EmbeddedServerConfig
from eid_gateway.eidserver.testpki import generate_test_pki
from eid_gateway.simulator.identities import default_identities
from saml.keys import generate_key_pair

T = TypeVar("T")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=300)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = generate_test_pki(Path(tmp) / "pki", "https://eid.example.de")
    key = generate_key_pair("ec-p256")
    server = EmbeddedEidServer(
        EmbeddedServerConfig("https://eid.example.de/paos", key, key.certificate, pki.credentials(b"bench" * 8))
    )
    request = UseIDRequest({n: Selection.REQUIRED for n in OPERATION_NAMES}, age=18, community_id="0276")
    files = card_files(default_identities()["erika"].data)

    def session(profiler: cProfile.Profile | None = None) -> float:
        """One whole session; returns the server's CPU seconds (``profiler`` runs around server calls)."""
        spent = 0.0

        def server_call(fn: Callable[[], T]) -> T:
            nonlocal spent
            t = time.thread_time()
            if profiler is not None:
                profiler.enable()
            try:
                return fn()
            finally:
                if profiler is not None:
                    profiler.disable()
                spent += time.thread_time() - t

        resp = server_call(lambda: server.use_id(request))
        assert resp.psk is not None and resp.session_id is not None
        psk_id, session_id = resp.psk.id, resp.session_id
        client = ClientEmulator(EmulatedCard(list(files)), psk_id)
        body: bytes | None = client.start()
        while body is not None:
            sent = body
            answer = server_call(lambda: server.handle_paos(sent, psk_id))  # noqa: B023 - called at once
            body = client.answer(answer.body)
        result = server_call(lambda: server.get_result(GetResultRequest(session_id, 1)))
        assert result.result.ok
        return spent

    server_cpu: list[float] = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(args.sessions):
        server_cpu.append(session() * 1000)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    # A second, profiled pass over the server calls only: which share of the server's time is spent in
    # elliptic-curve operations (ECDH, ECDSA, point decoding, key generation inside `cryptography`).
    profiler = cProfile.Profile()
    for _ in range(max(20, args.sessions // 5)):
        session(profiler)
    stats = pstats.Stats(profiler)
    entries: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = stats.stats  # type: ignore[attr-defined]
    total = sum(e[2] for e in entries.values())
    elliptic = sum(e[2] for (_, _, name), e in entries.items() if _is_elliptic(name))
    print(f"sessions:                        {args.sessions}")
    print(
        f"whole loop (server + emulators): {args.sessions / wall:.1f} sessions/s, "
        f"{cpu * 1000 / args.sessions:.2f} CPU ms/session"
    )
    print(
        f"server only:                     {statistics.mean(server_cpu):.2f} CPU ms/session "
        f"(median {statistics.median(server_cpu):.2f}, p95 {sorted(server_cpu)[int(0.95 * len(server_cpu))]:.2f})"
        f" -> {1000 / statistics.mean(server_cpu):.0f} sessions/s per core"
    )
    print(f"share in elliptic-curve operations (profiled pass, server calls only): {elliptic / total:.0%}")


def _is_elliptic(name: str) -> bool:
    """A profiler entry of `cryptography`'s elliptic-curve code (its Rust-backed `ec` module)."""
    return ".openssl.ec." in name or name.startswith("<built-in method ec.")


if __name__ == "__main__":
    main()
