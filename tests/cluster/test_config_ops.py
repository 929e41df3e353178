"""The config sections of issue 8: [store] for Redis, [limits], [audit], [metrics]; every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from eid_gateway.config import ConfigError, LimitsConfig, load_config
from eid_gateway.instance import write_example_config

SQLITE = 'kind = "sqlite"\npath = "data/gateway.sqlite3"'


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example_config(tmp_path_factory.mktemp("cfg"), "http://127.0.0.1:8080", 8080)


def variant(example: Path, name: str, store: str | None = None, extra: str = "") -> Path:
    text = example.read_text(encoding="utf-8")
    if store is not None:
        assert SQLITE in text
        text = text.replace(SQLITE, store)
    path = example.with_name(f"{name}.toml")
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.errors


def test_redis_store_settings(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REDIS_PW", "s3cret")
    config = load_config(
        variant(
            example,
            "redis-ok",
            'kind = "redis"\nurl = "rediss://redis.example:6380/2"\n'
            'key_prefix = "city-a:"\npassword_env = "TEST_REDIS_PW"\nusername = "eidgw"\n'
            'sentinels = ["10.0.0.1:26379", "[::1]:26380"]\nsentinel_master = "m1"\n'
            "timeout_seconds = 0.5\nretries = 0\nmax_connections = 8",
        )
    )
    r = config.store.redis
    assert config.store.kind == "redis" and r is not None
    assert (r.url, r.key_prefix, r.password, r.username) == (
        "rediss://redis.example:6380/2",
        "city-a:",
        "s3cret",
        "eidgw",
    )
    assert r.sentinels == (("10.0.0.1", 26379), ("::1", 26380)) and r.sentinel_master == "m1"
    assert r.tls and r.timeout_seconds == 0.5 and r.retries == 0 and r.max_connections == 8
    # the defaults: limits on, loopback proxies trusted, audit on, metrics for loopback
    assert (
        config.limits == LimitsConfig() and config.audit.enabled and config.metrics.allow == ("127.0.0.0/8", "::1/128")
    )


def test_store_mistakes_are_named(example: Path) -> None:
    found = errors(
        variant(
            example,
            "redis-bad",
            'kind = "redis"\nurl = "http://redis:6379"\nkey_prefix = "a b"\n'
            'password_env = "NO_SUCH_VARIABLE_X"\nsentinels = ["nohost"]\nretries = 99',
        )
    )
    assert "store.url: must be a redis://, rediss:// or unix:// URL" in found
    assert any(e.startswith("store.key_prefix: must be 1-64 characters") for e in found)
    assert "store.password_env: environment variable NO_SUCH_VARIABLE_X is not set" in found
    assert "store.sentinels[0]: must be host:port" in found
    assert "store.retries: must be between 0 and 20" in found
    found = errors(variant(example, "sqlite-redis-key", SQLITE + '\nurl = "redis://x"'))
    assert found == ['store.url: only applies to kind = "redis"']


def test_production_wants_tls_to_a_remote_redis(example: Path) -> None:
    text = 'kind = "redis"\nurl = "redis://10.1.2.3:6379/0"'
    path = variant(example, "prod-redis", text)
    path.write_text(
        'mode = "production"\n' + path.read_text(encoding="utf-8").replace('mode = "development"\n', ""),
        encoding="utf-8",
    )
    found = errors(path)
    assert "store.tls: must be true in production when Redis is reached over the network" in found


def test_limits_audit_metrics_sections(example: Path, tmp_path: Path) -> None:
    config = load_config(
        variant(
            example,
            "ops-ok",
            extra=(
                '[limits]\nstarts_per_ip = 5\ntrusted_proxies = ["192.0.2.0/24", "2001:db8::1"]\nmax_body_bytes = 65536\n'
                '[audit]\njsonl_path = "audit.jsonl"\n[metrics]\nallow = ["10.20.0.0/16"]\n'
            ),
        )
    )
    assert config.limits.starts_per_ip == 5 and config.limits.max_body_bytes == 65536
    assert config.limits.trusted_proxies == ("192.0.2.0/24", "2001:db8::1/128")
    assert config.audit.jsonl_path == example.parent / "audit.jsonl"
    assert config.metrics.allow == ("10.20.0.0/16",)
    found = errors(
        variant(
            example,
            "ops-bad",
            extra=(
                '[limits]\nstarts_per_ip = 0\ntrusted_proxies = ["proxy.example"]\nburst = 3\n'
                '[audit]\njsonl_path = "/no/such/dir/audit.jsonl"\nsecret = "missing.secret"\n'
                '[metrics]\nallow = ["everyone"]\n'
            ),
        )
    )
    assert "limits.starts_per_ip: must be between 1 and 1000000" in found
    assert "limits.trusted_proxies[0]: not an IP address or network ('proxy.example')" in found
    assert "limits.burst: unknown key" in found
    assert "audit.jsonl_path: directory /no/such/dir does not exist" in found
    assert any(e.startswith("audit.secret:") for e in found)
    assert "metrics.allow[0]: not an IP address or network ('everyone')" in found
