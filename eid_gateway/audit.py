"""The audit trail: one append-only, hash-chained record per sign-in, kept in the Store.

A record says when, for which service, through which frontend and backend, which attributes were
released and with what result. It never holds names, dates of birth or addresses: the flow reference
and the pseudonym appear only as keyed hashes (HMAC-SHA-256 under the audit key), so a record can be
matched to a citizen's request (the service knows its pseudonym) but not read back into one.

Each stored record carries ``mac`` = HMAC(key, seq ‖ prev ‖ body), where ``prev`` is the ``mac`` of
the record before it. :func:`verify_chain` therefore detects a deleted record (a gap or a broken
link), an altered one (its ``mac`` no longer matches) and a reordered one (the ``seq`` inside the
``mac`` no longer matches its place). Because the chain is keyed, it cannot be recomputed by someone
who can write to the database but does not hold the key. Deleting the newest records is caught by the
store's high-water mark (the highest ``seq`` ever appended); deleting them *and* lowering the mark is
visible only against an outside anchor: the JSON-lines copy, or the last ``seq``/``mac`` that
``audit verify`` prints and operators keep.

Appends from several nodes are ordered by the store (compare-and-append on the tail); each node keeps
the tail it last saw, so the common case is one round trip, and records queued while an append is in
flight go together in the next one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from eid_gateway.store.base import AuditEntry, Store, StoreError

log = logging.getLogger("eid_gateway.audit")

RECORD_VERSION: Final = 1
MAX_BATCH: Final = 200
MAX_ATTEMPTS: Final = 50
SUCCESS: Final = "success"


def derive_audit_key(pseudonym_secret: bytes) -> bytes:
    """The audit key when none is configured: bound to, but not equal to, the pseudonym secret."""
    return hmac.new(pseudonym_secret, b"eid-gateway audit chain v1", hashlib.sha256).digest()


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """What records hold instead of a flow reference or a pseudonym."""
    return hmac.new(key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]


def chain_mac(key: bytes, seq: int, prev: str, body: str) -> str:
    return hmac.new(key, f"{seq}\n{prev}\n{body}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """The content of one record (no personal data by construction: no field can hold any)."""

    time: str
    service: str
    frontend: str
    backend: str
    result: str
    attributes: tuple[str, ...]
    flow: str
    subject: str | None

    def body(self) -> str:
        data: dict[str, Any] = {"v": RECORD_VERSION, **asdict(self)}
        data["attributes"] = sorted(self.attributes)
        return json.dumps(data, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AuditTrail:
    """Writes records for the flow; :meth:`record` returns once the record is stored (fail closed:
    a sign-in whose record cannot be stored raises :class:`StoreError` before anything is released)."""

    def __init__(self, store: Store, key: bytes, *, backend: str, jsonl_path: Path | None = None) -> None:
        self.store = store
        self.key = key
        self.backend = backend
        self.jsonl_path = jsonl_path
        self.written = 0
        self._tail: tuple[int, str] | None = None  # (seq, mac) last seen; None = ask the store
        self._queue: list[tuple[str, asyncio.Future[AuditEntry]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def make(
        self,
        *,
        service: str,
        frontend: str,
        result: str,
        flow_ref: str,
        attributes: Iterable[str] = (),
        pseudonym: str | None = None,
        backend: str | None = None,
    ) -> AuditRecord:
        """``backend``: how the citizen signed in when not through the eID-Server (``"wallet"``)."""
        return AuditRecord(
            time=utc_now(),
            service=service,
            frontend=frontend,
            backend=backend or self.backend,
            result=result,
            attributes=tuple(sorted(attributes)),
            flow=keyed_hash(self.key, "flow", flow_ref),
            subject=keyed_hash(self.key, "pseudonym", pseudonym) if pseudonym else None,
        )

    async def record(self, record: AuditRecord) -> AuditEntry:
        future: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._queue.append((record.body(), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
            try:
                entries = await self._append([body for body, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                log.error("audit append failed records=%d error=%s", len(batch), type(exc).__name__)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, StoreError) else StoreError("audit append failed"))
                continue
            for (_, fut), entry in zip(batch, entries, strict=True):
                if not fut.done():
                    fut.set_result(entry)

    async def _append(self, bodies: Sequence[str]) -> list[AuditEntry]:
        for _ in range(MAX_ATTEMPTS):
            if self._tail is None:
                tail = await self.store.audit_tail()
                self._tail = (0, "") if tail is None else (tail.seq, tail.mac)
            seq, prev = self._tail
            entries: list[AuditEntry] = []
            for body in bodies:
                seq += 1
                mac = chain_mac(self.key, seq, prev, body)
                entries.append(AuditEntry(seq, prev, mac, body))
                prev = mac
            current = await self.store.audit_append(entries)
            if current is None:
                self._tail = (seq, prev)
                self.written += len(entries)
                self._write_jsonl(entries)
                return entries
            self._tail = (current.seq, current.mac)  # another node appended first: chain on from its tail
        raise StoreError("audit trail: too much contention to append")

    def _write_jsonl(self, entries: Sequence[AuditEntry]) -> None:
        if self.jsonl_path is None:
            return
        lines = "".join(json.dumps(asdict(e), separators=(",", ":"), ensure_ascii=False) + "\n" for e in entries)
        try:
            fd = os.open(self.jsonl_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as f:
                f.write(lines)
        except OSError as exc:  # the store holds the record; the copy is best effort
            log.error("audit JSON lines copy failed path=%s error=%s", self.jsonl_path, exc.strerror)


# --- reading, verifying, exporting -----------------------------------------------------------------------


async def read_all(store: Store, page: int = 1000) -> AsyncIterator[AuditEntry]:
    after = 0
    while True:
        entries = await store.audit_read(after, page)
        for e in entries:
            yield e
        if len(entries) < page:
            return
        after = entries[-1].seq


def read_jsonl(paths: Sequence[Path]) -> list[AuditEntry]:
    """Records from JSON-lines copies, in ``seq`` order. Several nodes may write one file or one file
    each, so line order means nothing; identical copies collapse, differing ones are both kept (and
    then fail verification)."""
    entries: set[AuditEntry] = set()
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    d = json.loads(line)
                    entries.add(AuditEntry(int(d["seq"]), str(d["prev"]), str(d["mac"]), str(d["body"])))
    return sorted(entries, key=lambda e: (e.seq, e.mac))


@dataclass(frozen=True)
class VerifyReport:
    records: int
    last_seq: int
    last_mac: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(entries: Iterable[AuditEntry], key: bytes, *, first_seq: int = 1) -> VerifyReport:
    """Check every link: consecutive ``seq`` from ``first_seq``, ``prev`` = the previous ``mac``, and each
    ``mac`` recomputed. Problems name the record number only (records carry no personal data anyway)."""
    problems: list[str] = []
    expected_seq, prev_mac, count, last = first_seq, None, 0, AuditEntry(0, "", "", "")
    for e in entries:
        count += 1
        if e.seq != expected_seq:
            if e.seq > expected_seq:
                problems.append(f"record {e.seq}: records {expected_seq}..{e.seq - 1} are missing")
            else:
                problems.append(f"record {e.seq}: out of order (expected {expected_seq})")
        if chain_mac(key, e.seq, e.prev, e.body) != e.mac:
            problems.append(f"record {e.seq}: altered (its keyed hash does not match its content)")
        if prev_mac is not None and e.prev != prev_mac:
            problems.append(f"record {e.seq}: chain broken (does not follow the record before it)")
        elif prev_mac is None and first_seq == 1 and e.seq == 1 and e.prev != "":
            problems.append("record 1: chain broken (the first record must not have a predecessor)")
        prev_mac, expected_seq, last = e.mac, e.seq + 1, e
    return VerifyReport(count, last.seq, last.mac, tuple(problems))


def parse_since(value: str) -> datetime:
    """``YYYY-MM-DD`` or an ISO 8601 time (UTC when no offset is given)."""
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def select(
    entries: Iterable[AuditEntry],
    *,
    service: str | None,
    since: datetime | None,
    subject: str | None = None,
) -> Iterable[dict[str, Any]]:
    """The records of ``service`` from ``since`` on (optionally of one hashed subject), with their seq."""
    for e in entries:
        body = json.loads(e.body)
        if service is not None and body.get("service") != service:
            continue
        if since is not None and parse_since(str(body.get("time", "")).replace("Z", "+00:00")) < since:
            continue
        if subject is not None and body.get("subject") != subject:
            continue
        yield {"seq": e.seq, **body}
