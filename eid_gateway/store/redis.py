"""The :class:`~eid_gateway.store.base.Store` for several gateway nodes: Redis (redis-py, asyncio).

Every operation is one Redis command or one Lua script, so it is atomic across nodes and costs one
round trip. Expiry is decided by the store's clock (each record carries its expiry time, checked in
the script) and Redis expires the keys physically as well, so nothing needs sweeping in normal
operation. Layout under the key prefix ``P`` (default ``eidgw:``)::

    P f:<ref>                  hash  _s state, _v version, _e expiry, d:<key> JSON of each data key
    P o:<namespace>:<value>    str   expiry of a consumed one-time value
    P k:<namespace>:<key>      str   "<expiry> <value>"
    P c:<namespace>:<key>:<n>  int   rate-limit counter of fixed window n
    P m:<namespace>            hash  a small durable map (no TTL)
    P v:<namespace>            hash  a versioned map: "<version> <value>" per key (compare-and-set)
    P l:<namespace>:<key>      zset  a log: score the time, member "<counter> <body>"
    P l:<namespace>            set   the keys of the logs of <namespace> (for pruning)
    P lc:<namespace>           int   the counter that orders log entries of equal time
    P n:<channel>              pub/sub channel of publish / listen
    P{audit}                   stream of audit records, entry ID "<seq>-0", fields prev, mac, body
    P{audit}:tail              str   "<seq> <mac>" of the highest record ever appended

Flow data is kept one hash field per top-level key, so a transition merges by setting and deleting
fields and no JSON is parsed inside Redis. Not for Redis Cluster (the transition with a one-time claim
touches two keys); Sentinel is supported for failover.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eid_gateway.store.base import (
    EMPTY_TAIL,
    AuditEntry,
    Counter,
    FlowExists,
    FlowRecord,
    LogEntry,
    OnceClaim,
    StoreError,
    StoreUnavailable,
    Versioned,
    check_names,
    window_index,
)

if TYPE_CHECKING:
    from eid_gateway.config import RedisSettings


_CREATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local args = {'_s', ARGV[1], '_v', 1, '_e', ARGV[2]}
for i = 4, #ARGV, 2 do
  args[#args + 1] = 'd:' .. ARGV[i]
  args[#args + 1] = ARGV[i + 1]
end
redis.call('HSET', KEYS[1], unpack(args))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_UPDATE: Final = """
local h = redis.call('HMGET', KEYS[1], '_v', '_e')
if not h[1] or tonumber(h[1]) ~= tonumber(ARGV[1]) or tonumber(h[2]) <= tonumber(ARGV[2]) then
  return false
end
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'd:' then redis.call('HDEL', KEYS[1], f) end
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], 'd:' .. ARGV[i], ARGV[i + 1]) end
redis.call('HINCRBY', KEYS[1], '_v', 1)
return redis.call('HGETALL', KEYS[1])
"""

# ARGV: from, to, now, once expiry, once px, number of set pairs, set pairs..., removed keys...
_TRANSITION: Final = """
local h = redis.call('HMGET', KEYS[1], '_s', '_e')
if h[1] ~= ARGV[1] or not h[2] or tonumber(h[2]) <= tonumber(ARGV[3]) then return false end
if #KEYS > 1 then
  local e = redis.call('GET', KEYS[2])
  if e and tonumber(e) > tonumber(ARGV[3]) then return false end
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
end
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  redis.call('HSET', KEYS[1], 'd:' .. ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', KEYS[1], 'd:' .. ARGV[i])
  i = i + 1
end
redis.call('HSET', KEYS[1], '_s', ARGV[2])
redis.call('HINCRBY', KEYS[1], '_v', 1)
return redis.call('HGETALL', KEYS[1])
"""

_ONCE: Final = """
local e = redis.call('GET', KEYS[1])
if e and tonumber(e) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

_HIT: Final = """
local out = {}
for i, k in ipairs(KEYS) do
  local n = redis.call('INCR', k)
  if n == 1 then redis.call('PEXPIRE', k, ARGV[i]) end
  out[i] = n
end
return out
"""

_AUDIT_APPEND: Final = """
local t = redis.call('GET', KEYS[2])
local seq, mac = 0, ''
if t then
  local sp = string.find(t, ' ', 1, true)
  seq = tonumber(string.sub(t, 1, sp - 1))
  mac = string.sub(t, sp + 1)
end
if tonumber(ARGV[1]) ~= seq + 1 or ARGV[2] ~= mac then
  if not t then return {'0 ', false} end
  local id = seq .. '-0'
  return {t, redis.call('XRANGE', KEYS[1], id, id)}
end
local last = nil
for i = 1, #ARGV, 4 do
  redis.call('XADD', KEYS[1], ARGV[i] .. '-0', 'prev', ARGV[i + 1], 'mac', ARGV[i + 2], 'body', ARGV[i + 3])
  last = ARGV[i] .. ' ' .. ARGV[i + 2]
end
redis.call('SET', KEYS[2], last)
return false
"""

_AUDIT_TAIL: Final = """
local t = redis.call('GET', KEYS[2])
if not t then return false end
local sp = string.find(t, ' ', 1, true)
local id = string.sub(t, 1, sp - 1) .. '-0'
local e = redis.call('XRANGE', KEYS[1], id, id)
return {t, e}
"""

# KEYS: the log, the set of the namespace's logs, the namespace's counter. ARGV: key, (at, body)...
# Members are "<counter, 16 hex digits> <body>": equal times sort in append order, equal bodies stay apart.
_LOG_APPEND: Final = """
for i = 2, #ARGV, 2 do
  local n = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], ARGV[i], string.format('%016x', n) .. ' ' .. ARGV[i + 1])
end
redis.call('SADD', KEYS[2], ARGV[1])
return 0
"""

# KEYS: the map, the channel ("" for none). ARGV: key, expected version, value, message.
_PUT_VERSIONED: Final = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local v = 0
if cur then v = tonumber(string.sub(cur, 1, string.find(cur, ' ', 1, true) - 1)) end
if v ~= tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[1], ARGV[1], (v + 1) .. ' ' .. ARGV[3])
if KEYS[2] ~= '' then redis.call('PUBLISH', KEYS[2], ARGV[4]) end
return v + 1
"""

# KEYS: candidates; ARGV[1] now, ARGV[i+1] the kind of KEYS[i]: f (flow), o (once), k (value).
_SWEEP: Final = """
local n = 0
local now = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  local kind = ARGV[i + 1]
  local e = nil
  if kind == 'f' then
    e = redis.call('HGET', k, '_e')
  else
    local v = redis.call('GET', k)
    if v and kind == 'k' then e = string.sub(v, 1, (string.find(v, ' ', 1, true) or 1) - 1) else e = v end
  end
  if e and tonumber(e) and tonumber(e) <= now then
    n = n + redis.call('DEL', k)
  end
end
return n
"""


def _px(ttl: float) -> int:
    """Physical expiry in ms (at least 1; a little later than the logical one, never earlier)."""
    return max(1, int(ttl * 1000) + 1000)


def _check_name(what: str, value: str) -> None:
    check_names(what, (value,))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class RedisStore:
    """Redis store over one ``redis.asyncio.Redis`` client (a direct connection pool or a Sentinel
    master). ``round_trips`` counts the requests sent (for benchmarks and the per-sign-in budget)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "eidgw:",
        clock: Callable[[], float] = time.time,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._r = client
        self._p = prefix
        self._clock = clock
        self._on_close = on_close
        self._closed = False
        self.round_trips = 0
        self._create = client.register_script(_CREATE)
        self._update = client.register_script(_UPDATE)
        self._transition = client.register_script(_TRANSITION)
        self._once = client.register_script(_ONCE)
        self._hit = client.register_script(_HIT)
        self._audit_append = client.register_script(_AUDIT_APPEND)
        self._audit_tail = client.register_script(_AUDIT_TAIL)
        self._sweep = client.register_script(_SWEEP)
        self._put_versioned = client.register_script(_PUT_VERSIONED)
        self._log_append = client.register_script(_LOG_APPEND)
        self._audit_key = prefix + "{audit}"
        self._audit_tail_key = prefix + "{audit}:tail"

    # --- plumbing ---------------------------------------------------------------------------------------

    async def _do(self, call: Awaitable[Any]) -> Any:
        if self._closed:
            if hasattr(call, "close"):
                call.close()
            raise StoreError("store is closed")
        self.round_trips += 1
        try:
            return await call
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
        except RedisError as exc:
            raise StoreError(f"redis: {type(exc).__name__}") from exc

    def _flow_key(self, ref: str) -> str:
        return f"{self._p}f:{ref}"

    def _once_key(self, namespace: str, value: str) -> str:
        _check_name("namespace", namespace)
        return f"{self._p}o:{namespace}:{value}"

    def _kv_key(self, namespace: str, key: str) -> str:
        _check_name("namespace", namespace)
        return f"{self._p}k:{namespace}:{key}"

    @staticmethod
    def _pairs(data: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for key, value in data.items():
            _check_name("flow data key", key)
            out.extend([key, _dumps(value)])
        return out

    def _record(self, ref: str, raw: Any) -> FlowRecord | None:
        """A record from HGETALL (a dict, or a flat list when it came through a script)."""
        if not raw:
            return None
        if isinstance(raw, list):
            raw = dict(zip(raw[0::2], raw[1::2], strict=False))
        expires = float(raw["_e"])
        if expires <= self._clock():
            return None
        data = {k[2:]: json.loads(v) for k, v in raw.items() if k.startswith("d:")}
        return FlowRecord(ref, str(raw["_s"]), data, int(raw["_v"]), expires)

    # --- flows ------------------------------------------------------------------------------------------

    async def create_flow(self, ref: str, state: str, data: Mapping[str, Any], ttl: float) -> FlowRecord:
        expires = self._clock() + ttl
        args: list[Any] = [state, repr(expires), _px(ttl), *self._pairs(data)]
        created = await self._do(self._create(keys=[self._flow_key(ref)], args=args))
        if not created:
            raise FlowExists("flow reference already in use")
        return FlowRecord(ref, state, json.loads(_dumps(dict(data))), 1, expires)

    async def get_flow(self, ref: str) -> FlowRecord | None:
        raw = await self._do(self._r.hgetall(self._flow_key(ref)))
        return self._record(ref, raw)

    async def update_flow(self, ref: str, data: Mapping[str, Any], *, expected_version: int) -> FlowRecord | None:
        args: list[Any] = [expected_version, repr(self._clock()), *self._pairs(data)]
        raw = await self._do(self._update(keys=[self._flow_key(ref)], args=args))
        return self._record(ref, raw)

    async def transition(
        self,
        ref: str,
        from_state: str,
        to_state: str,
        changes: Mapping[str, Any] | None = None,
        *,
        once: OnceClaim | None = None,
    ) -> FlowRecord | None:
        now = self._clock()
        sets = {k: v for k, v in (changes or {}).items() if v is not None}
        removes = [k for k, v in (changes or {}).items() if v is None]
        for key in removes:
            _check_name("flow data key", key)
        keys = [self._flow_key(ref)]
        once_exp, once_px = "0", 0
        if once is not None:
            keys.append(self._once_key(once.namespace, once.value))
            once_exp, once_px = repr(now + once.ttl), _px(once.ttl)
        args: list[Any] = [from_state, to_state, repr(now), once_exp, once_px, len(sets), *self._pairs(sets), *removes]
        raw = await self._do(self._transition(keys=keys, args=args))
        return self._record(ref, raw)

    # --- one-time values ----------------------------------------------------------------------------------

    async def consume_once(self, namespace: str, value: str, ttl: float) -> bool:
        now = self._clock()
        key = self._once_key(namespace, value)
        won = await self._do(self._once(keys=[key], args=[repr(now), repr(now + ttl), _px(ttl)]))
        return bool(won)

    async def put_value(self, namespace: str, key: str, value: str, ttl: float) -> None:
        expires = self._clock() + ttl
        await self._do(self._r.set(self._kv_key(namespace, key), f"{expires!r} {value}", px=_px(ttl)))

    def _value(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        expires, _, value = raw.partition(" ")
        return value if float(expires) > self._clock() else None

    async def get_value(self, namespace: str, key: str) -> str | None:
        return self._value(await self._do(self._r.get(self._kv_key(namespace, key))))

    async def take_value(self, namespace: str, key: str) -> str | None:
        return self._value(await self._do(self._r.getdel(self._kv_key(namespace, key))))

    # --- small durable maps ----------------------------------------------------------------------------------

    def _map_key(self, namespace: str) -> str:
        _check_name("namespace", namespace)
        return f"{self._p}m:{namespace}"

    async def map_set(self, namespace: str, key: str, value: str) -> None:
        await self._do(self._r.hset(self._map_key(namespace), key, value))

    async def map_all(self, namespace: str) -> dict[str, str]:
        raw = await self._do(self._r.hgetall(self._map_key(namespace)))
        return {str(k): str(v) for k, v in raw.items()}

    async def map_delete(self, namespace: str, key: str) -> bool:
        return bool(await self._do(self._r.hdel(self._map_key(namespace), key)))

    # --- versioned maps, logs, pub/sub ---------------------------------------------------------------------

    @staticmethod
    def _versioned(raw: str) -> Versioned:
        version, _, value = raw.partition(" ")
        return Versioned(value, int(version))

    async def get_versioned(self, namespace: str, key: str) -> Versioned | None:
        _check_name("namespace", namespace)
        raw = await self._do(self._r.hget(f"{self._p}v:{namespace}", key))
        return None if raw is None else self._versioned(raw)

    async def put_versioned(
        self, namespace: str, key: str, value: str, *, expected_version: int, publish: tuple[str, str] | None = None
    ) -> int | None:
        _check_name("namespace", namespace)
        channel, message = "", ""
        if publish is not None:
            _check_name("channel", publish[0])
            channel, message = f"{self._p}n:{publish[0]}", publish[1]
        keys = [f"{self._p}v:{namespace}", channel]
        got = await self._do(self._put_versioned(keys=keys, args=[key, expected_version, value, message]))
        return None if got is None else int(got)

    async def all_versioned(self, namespace: str) -> dict[str, Versioned]:
        _check_name("namespace", namespace)
        raw = await self._do(self._r.hgetall(f"{self._p}v:{namespace}"))
        return {str(k): self._versioned(v) for k, v in raw.items()}

    async def log_append(self, namespace: str, key: str, entries: Sequence[LogEntry]) -> None:
        _check_name("namespace", namespace)
        if not entries:
            return
        args: list[Any] = [key]
        for e in entries:
            args.extend([repr(e.at), e.body])
        keys = [f"{self._p}l:{namespace}:{key}", f"{self._p}l:{namespace}", f"{self._p}lc:{namespace}"]
        await self._do(self._log_append(keys=keys, args=args))

    async def log_read(self, namespace: str, key: str, *, since: float, limit: int) -> list[LogEntry]:
        _check_name("namespace", namespace)
        if limit <= 0:
            return []
        raw = await self._do(
            self._r.zrevrangebyscore(
                f"{self._p}l:{namespace}:{key}", "+inf", repr(since), start=0, num=limit, withscores=True
            )
        )
        return [LogEntry(float(score), str(member).partition(" ")[2]) for member, score in reversed(raw)]

    async def log_prune(self, namespace: str, before: float) -> int:
        _check_name("namespace", namespace)
        keys = await self._do(self._r.smembers(f"{self._p}l:{namespace}"))
        if not keys:
            return 0
        pipe = self._r.pipeline(transaction=False)
        for key in sorted(keys):
            pipe.zremrangebyscore(f"{self._p}l:{namespace}:{key}", "-inf", f"({before!r}")
        return sum(int(n) for n in await self._do(pipe.execute()))

    async def publish(self, channel: str, message: str) -> None:
        _check_name("channel", channel)
        await self._do(self._r.publish(f"{self._p}n:{channel}", message))

    async def listen(self, channel: str) -> AsyncIterator[str]:
        """Redis pub/sub on a connection of its own (taken from the pool for as long as it listens)."""
        _check_name("channel", channel)
        if self._closed:
            raise StoreError("store is closed")
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        try:
            try:
                await pubsub.subscribe(f"{self._p}n:{channel}")
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is not None and msg.get("type") == "message":
                        yield str(msg["data"])
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}") from exc
            except RedisError as exc:
                raise StoreError(f"redis: {type(exc).__name__}") from exc
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    # --- rate-limit counters ----------------------------------------------------------------------------------

    async def hit(self, counters: Sequence[Counter]) -> list[int]:
        if not counters:
            return []
        now = self._clock()
        keys, px = [], []
        for c in counters:
            _check_name("namespace", c.namespace)
            n = window_index(now, c.window)
            keys.append(f"{self._p}c:{c.namespace}:{c.key}:{n}")
            px.append(_px((n + 1) * c.window - now))
        counts = await self._do(self._hit(keys=keys, args=px))
        return [int(n) for n in counts]

    # --- audit trail -------------------------------------------------------------------------------------------

    @staticmethod
    def _entry(raw: Any) -> AuditEntry:
        entry_id, fields = raw
        if isinstance(fields, list):
            fields = dict(zip(fields[0::2], fields[1::2], strict=False))
        return AuditEntry(int(str(entry_id).split("-")[0]), fields["prev"], fields["mac"], fields["body"])

    def _tail(self, raw: Any) -> AuditEntry | None:
        """The tail from a script's answer ``{"<seq> <mac>", XRANGE of that seq}``."""
        if not raw:
            return None
        tail, found = raw
        seq, _, mac = str(tail).partition(" ")
        if int(seq) == 0:
            return EMPTY_TAIL
        if found:
            entry = self._entry(found[0])
            return AuditEntry(int(seq), entry.prev, mac, entry.body)
        return AuditEntry(int(seq), "", mac, "")  # the newest record was deleted: the tail still counts

    async def audit_tail(self) -> AuditEntry | None:
        raw = await self._do(self._audit_tail(keys=[self._audit_key, self._audit_tail_key]))
        return self._tail(raw)

    async def audit_append(self, entries: Sequence[AuditEntry]) -> AuditEntry | None:
        if not entries:
            return None
        args: list[Any] = []
        for e in entries:
            args.extend([e.seq, e.prev, e.mac, e.body])
        raw = await self._do(self._audit_append(keys=[self._audit_key, self._audit_tail_key], args=args))
        return self._tail(raw)

    async def audit_read(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        raw = await self._do(self._r.xrange(self._audit_key, min=f"{after_seq + 1}-0", max="+", count=limit))
        return [self._entry(item) for item in raw]

    # --- housekeeping -------------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Delete records whose logical expiry has passed (Redis also expires them by itself)."""
        now = repr(self._clock())
        total = 0
        cursor: int = 0
        kinds = {"f:": "f", "o:": "o", "k:": "k"}
        while True:
            cursor, keys = await self._do(self._r.scan(cursor, match=self._p + "*", count=500))
            batch = [
                (k, kinds[k[len(self._p) : len(self._p) + 2]])
                for k in keys
                if k[len(self._p) : len(self._p) + 2] in kinds
            ]
            if batch:
                total += int(
                    await self._do(self._sweep(keys=[k for k, _ in batch], args=[now, *[kind for _, kind in batch]]))
                )
            if cursor == 0:
                return total

    async def ping(self) -> None:
        await self._do(self._r.ping())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._r.aclose()
        if self._on_close is not None:
            await self._on_close()


def _ssl_options(settings: RedisSettings) -> dict[str, Any]:
    if not settings.tls:
        return {}
    options: dict[str, Any] = {
        "ssl": True,
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_min_version": ssl.TLSVersion.TLSv1_2,
    }
    if settings.tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.tls_ca_file)
    return options


def create_redis_store(settings: RedisSettings, *, clock: Callable[[], float] = time.time) -> RedisStore:
    """A store from the ``[store]`` section: a direct URL, or the master named by Sentinels.

    Connection errors are retried briefly (a Redis restart takes well under a second with AOF);
    after that the store raises :class:`StoreUnavailable` and the gateway answers 503.
    """
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), settings.retries),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 30,
    }
    if settings.password is not None:
        common["password"] = settings.password
    if settings.username is not None:
        common["username"] = settings.username
    if settings.sentinels:
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": settings.timeout_seconds,
            "socket_connect_timeout": settings.connect_timeout_seconds,
        }
        if settings.sentinel_password is not None:
            sentinel_kwargs["password"] = settings.sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(settings.sentinels), sentinel_kwargs=sentinel_kwargs, **common, **_ssl_options(settings)
        )
        client: aioredis.Redis = sentinel.master_for(settings.sentinel_master, db=settings.db)

        async def close_sentinels() -> None:
            for s in sentinel.sentinels:
                await s.aclose()

        return RedisStore(client, prefix=settings.key_prefix, clock=clock, on_close=close_sentinels)
    # A blocking pool: under a burst, requests wait for a free connection instead of failing.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.timeout_seconds,
        **common,
        **_ssl_options(settings),
    )
    return RedisStore(aioredis.Redis.from_pool(pool), prefix=settings.key_prefix, clock=clock)
