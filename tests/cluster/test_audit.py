"""The audit trail: one record per sign-in, hash-chained, verified and exported by the CLI."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import redis

from eid_gateway.audit import AuditTrail, chain_mac, derive_audit_key, keyed_hash, read_jsonl, verify_chain
from eid_gateway.config import load_config
from eid_gateway.instance import write_example_config
from eid_gateway.store.base import AuditEntry
from eid_gateway.store.redis_server import RedisServer
from eid_gateway.store.sqlite import SqliteStore
from helpers.cli import run_cli

from .conftest import STATUS_SUCCESS, Cluster, NewCitizen


async def run(*argv: str) -> tuple[int, str, str]:
    """The CLI as an operator runs it (it has its own event loop, so it runs in a thread here)."""
    return await asyncio.to_thread(run_cli, *argv)


# --- the chain itself -------------------------------------------------------------------------------------


def chain(key: bytes, n: int) -> list[AuditEntry]:
    entries, prev = [], ""
    for seq in range(1, n + 1):
        body = json.dumps({"seq_in_body": seq, "service": "demo"})
        mac = chain_mac(key, seq, prev, body)
        entries.append(AuditEntry(seq, prev, mac, body))
        prev = mac
    return entries


def test_verify_chain_finds_each_kind_of_tampering() -> None:
    key = b"k" * 32
    good = chain(key, 6)
    assert verify_chain(good, key).ok and verify_chain(good, key).last_seq == 6
    deleted = good[:2] + good[3:]
    assert any("missing" in p for p in verify_chain(deleted, key).problems)
    altered = list(good)
    altered[3] = AuditEntry(4, good[3].prev, good[3].mac, good[3].body.replace("demo", "other"))
    assert verify_chain(altered, key).problems == ("record 4: altered (its keyed hash does not match its content)",)
    swapped = [good[0], good[2], good[1], *good[3:]]
    assert not verify_chain(swapped, key).ok
    # renumbering after a deletion (to hide the gap) breaks the keyed hashes and the links
    renumbered = [good[0], AuditEntry(2, good[2].prev, good[2].mac, good[2].body), *good[3:]]
    assert not verify_chain(renumbered, key).ok
    # recomputing the chain without the key does not help the forger
    forged = chain(b"x" * 32, 6)
    assert not verify_chain(forged, key).ok


# --- SQLite: tampering with the table, detected by `eid-gateway audit verify` ------------------------------


@pytest.fixture
def sqlite_instance(tmp_path: Path) -> Path:
    config = write_example_config(tmp_path / "inst", "http://127.0.0.1:8080", 8080)
    return config


async def write_records(store: SqliteStore | object, key: bytes, n: int) -> None:
    trail = AuditTrail(store, key, backend="simulator")  # type: ignore[arg-type]
    for i in range(n):
        await trail.record(
            trail.make(
                service="demo" if i % 2 else "other",
                frontend="saml",
                result=STATUS_SUCCESS,
                flow_ref=f"ref{i}",
                attributes=["given_names"],
                pseudonym=f"p{i}",
            )
        )


def _tamper(db: Path, *sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER audit_no_update")  # what someone with write access to the file would do
    conn.execute("DROP TRIGGER audit_no_delete")
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "attack,expected",
    [
        ("DELETE FROM audit WHERE seq = 3", "records 3..3 are missing"),
        ("UPDATE audit SET body = replace(body, '\"demo\"', '\"other\"') WHERE seq = 2", "record 2: altered"),
        (
            "UPDATE audit SET seq = -seq WHERE seq IN (2, 4); UPDATE audit SET seq = 6 + seq WHERE seq < 0",
            "record 2: altered",
        ),
        ("DELETE FROM audit WHERE seq = 5", "records 5..5 are missing"),
        ("DELETE FROM audit WHERE seq = 6", "records 6..6 are missing (the trail was cut short)"),
    ],
)
async def test_cli_verify_detects_deleted_altered_reordered(sqlite_instance: Path, attack: str, expected: str) -> None:
    config = load_config(sqlite_instance)
    key = derive_audit_key(config.keys.pseudonym_secret)
    store = SqliteStore(config.store.path)
    await write_records(store, key, 6)
    await store.close()
    code, out, err = await run("audit", "verify", "--config", str(sqlite_instance))
    assert code == 0 and "audit trail OK" in out and "6 records" in out, err
    _tamper(config.store.path, *attack.split("; "))
    code, out, err = await run("audit", "verify", "--config", str(sqlite_instance))
    assert code == 1 and "audit trail BROKEN" in err and expected in err, err


async def test_cli_export_for_a_data_protection_request(sqlite_instance: Path) -> None:
    config = load_config(sqlite_instance)
    key = derive_audit_key(config.keys.pseudonym_secret)
    store = SqliteStore(config.store.path)
    await write_records(store, key, 6)
    await store.close()
    code, out, err = await run(
        "audit", "export", "--config", str(sqlite_instance), "--service", "demo", "--since", "2020-01-01"
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["seq"] for r in records] == [2, 4, 6] and all(r["service"] == "demo" for r in records)
    code, out, _ = await run(
        "audit", "export", "--config", str(sqlite_instance), "--service", "demo", "--pseudonym", "p3"
    )
    [only] = [json.loads(line) for line in out.splitlines()]
    assert only["seq"] == 4 and only["subject"] == keyed_hash(key, "pseudonym", "p3")
    code, out, _ = await run(
        "audit", "export", "--config", str(sqlite_instance), "--service", "demo", "--since", "2999-01-01"
    )
    assert code == 0 and out == ""
    code, _, err = await run(
        "audit", "export", "--config", str(sqlite_instance), "--service", "demo", "--since", "soon"
    )
    assert code == 64 and "--since" in err


# --- Redis and the cluster: real sign-ins on both nodes ----------------------------------------------------


async def test_cluster_signins_leave_one_verified_record_each(cluster: Cluster, new_citizen: NewCitizen) -> None:
    a, b = cluster.nodes["a"], cluster.nodes["b"]
    before = len(read_jsonl([cluster.directory / "audit.jsonl"])) if (cluster.directory / "audit.jsonl").exists() else 0
    for i in range(6):
        c = new_citizen()
        await c.begin(a if i % 2 else b)
        await c.fetch_tc_token(b if i % 2 else a)
        status, page = await c.refresh(a, await c.card_step(pin="123456" if i < 5 else "000000"))
        assert status == 200
    code, out, err = await run("audit", "verify", "--config", str(cluster.config_path))
    assert code == 0 and "audit trail OK in store (redis)" in out, err
    # both nodes appended to one JSON-lines file; the copy verifies too and holds the same records
    jsonl = cluster.directory / "audit.jsonl"
    code, out, err = await run("audit", "verify", "--config", str(cluster.config_path), "--file", str(jsonl))
    assert code == 0, err
    entries = read_jsonl([jsonl])
    assert len(entries) >= before + 6
    last = [json.loads(e.body) for e in entries[-6:]]
    assert [r["result"] for r in last].count("success") == 5
    assert last[-1]["result"] == "wrong_pin" or last[-1]["result"] != "success"
    assert {r["service"] for r in last} == {"demo"} and {r["backend"] for r in last} == {"tr03130"}
    text = jsonl.read_text(encoding="utf-8")
    for personal in ("MUSTERMANN", "ERIKA", "HEIDESTRASSE", "1964-08-12", "19640812", "12.08.1964", "KÖLN"):
        assert personal not in text


async def test_redis_stream_tampering_is_detected(redis_server: RedisServer, sqlite_instance: Path) -> None:
    text = sqlite_instance.read_text(encoding="utf-8").replace(
        'kind = "sqlite"\npath = "data/gateway.sqlite3"',
        f'kind = "redis"\nurl = "{redis_server.url}"\nkey_prefix = "audit-test:"',
    )
    path = sqlite_instance.with_name("redis.toml")
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.store.redis is not None
    from eid_gateway.store.redis import create_redis_store

    store = create_redis_store(config.store.redis)
    await write_records(store, derive_audit_key(config.keys.pseudonym_secret), 5)
    await store.close()
    assert (await run("audit", "verify", "--config", str(path)))[0] == 0
    raw = redis.Redis.from_url(redis_server.url)
    raw.xdel("audit-test:{audit}", "5-0")  # the newest record: only the high-water mark shows it
    code, _, err = await run("audit", "verify", "--config", str(path))
    assert code == 1 and "records 5..5 are missing (the trail was cut short)" in err
    raw.xdel("audit-test:{audit}", "2-0")
    code, _, err = await run("audit", "verify", "--config", str(path))
    assert code == 1 and "records 2..2 are missing" in err
    raw.close()
