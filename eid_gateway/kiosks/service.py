"""Kiosk messages applied to the shared state, and every node's view kept current (the I/O around
the pure steps of :mod:`eid_gateway.kiosks.kiosk_state`).

A message is one read, one step, and one compare-and-set write that publishes the new state in the
same store operation: when another node wrote first, the write fails and the step is decided again on
the newer state (so of two reports n and n+1 racing on two nodes, n+1's state is the one that stays,
in either order). The winner appends the step's history events; every node (the writer's too)
applies what it hears to its registry, which tells its dashboards. Missed messages (a Redis
reconnect) are healed by reading all states again after each (re)subscription and every heartbeat
interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, Final

from aiohttp import web

from cardreader.model import KioskSnapshot
from eid_gateway.kiosks import kiosk_state as ks
from eid_gateway.kiosks.history import KioskEvent
from eid_gateway.kiosks.kiosk_state import Ack, KioskState, StateError, Step, state_from_json, state_to_json
from eid_gateway.kiosks.registry import KioskRegistry
from eid_gateway.kiosks.state_store import KioskStateStore
from eid_gateway.store.base import StoreError

log = logging.getLogger("eid_gateway.kiosks")

#: compare-and-set attempts before a message is answered 503 (each loses only to a newer write)
ATTEMPTS: Final = 50
DAY: Final = 86400.0


class KioskStateBusy(StoreError):
    """The kiosk's record kept moving under this node's writes (the agent retries)."""


@dataclass(eq=False, repr=False)  # a service, not a value
class KioskService:
    registry: KioskRegistry
    store: KioskStateStore
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    #: how often all states are read again (None: every heartbeat interval)
    resync_seconds: float | None = None

    # -- messages -------------------------------------------------------------------------------
    async def _step(self, kiosk_id: str, decide: Callable[[KioskState, float], Step]) -> Step:
        for _ in range(ATTEMPTS):
            cur = await self.store.get(kiosk_id)
            version = cur.version if cur is not None else 0
            try:
                state = state_from_json(cur.value) if cur is not None else KioskState()
            except StateError:
                log.warning("kiosk state of %s unreadable, starting afresh", kiosk_id)
                state = KioskState()
            step = decide(state, self.clock())
            if step.state is None:
                if cur is not None:
                    self.registry.apply(kiosk_id, state, version)  # this node may lag behind
                return step
            text = state_to_json(step.state)
            # the message names the version this write makes; it is sent only if the write succeeds
            message = json.dumps(
                {"id": kiosk_id, "v": version + 1, "seen_only": step.seen_only, "state": text}, separators=(",", ":")
            )
            new_version = await self.store.put(kiosk_id, text, expected_version=version, message=message)
            if new_version is None:
                continue  # another node wrote first: decide again on its state
            self.registry.apply(kiosk_id, step.state, new_version, seen_only=step.seen_only)
            if step.events:
                await self.store.add_history(kiosk_id, step.events)
            return step
        raise KioskStateBusy("kiosk state kept changing")

    @property
    def _limit(self) -> float:
        return self.registry.settings.stale_after_seconds

    async def report_state(
        self, kiosk_id: str, instance: str, seq: int, snapshot: KioskSnapshot, queue: int = 0, dropped: int = 0
    ) -> Ack:
        step = await self._step(
            kiosk_id, lambda s, now: ks.on_state(s, instance, seq, snapshot, queue, dropped, now, self._limit)
        )
        self.registry.count("state", step)
        return step.ack

    async def heartbeat(self, kiosk_id: str, instance: str, seq: int, queue: int = 0, dropped: int = 0) -> Ack:
        step = await self._step(
            kiosk_id, lambda s, now: ks.on_heartbeat(s, instance, seq, queue, dropped, now, self._limit)
        )
        self.registry.count("heartbeat", step)
        return step.ack

    async def offline(self, kiosk_id: str, instance: str, seq: int) -> Ack:
        step = await self._step(kiosk_id, lambda s, now: ks.on_offline(s, instance, seq, now))
        self.registry.count("offline", step)
        return step.ack

    async def refused(self, kiosk_id: str) -> None:
        """The kiosk API refused a credential for a configured kiosk (others are not recorded)."""
        if kiosk_id in self.registry.records:
            await self._step(kiosk_id, lambda s, now: ks.on_refused(s, now, self._limit))

    # -- keeping this node current ------------------------------------------------------------------
    async def resync(self) -> None:
        self.registry.restore(await self.store.load_all())

    def _heard(self, message: str) -> None:
        try:
            doc: Any = json.loads(message)
            kiosk_id, version, seen_only = str(doc["id"]), int(doc["v"]), bool(doc.get("seen_only"))
            if not self.registry.is_newer(kiosk_id, version):
                return  # this node's own write, or one a resync brought already
            state = state_from_json(doc["state"])
        except (ValueError, KeyError, TypeError, StateError):
            log.warning("kiosk change message unreadable, ignored")
            return
        self.registry.apply(kiosk_id, state, version, seen_only=seen_only)

    async def follow(self, *, retry_seconds: float = 1.0) -> None:
        """Apply what every node publishes, for as long as the app runs (resubscribing after errors)."""
        while True:
            changes: AsyncIterator[str] = self.store.changes()
            try:
                first = asyncio.ensure_future(anext(changes))  # subscribes
                try:
                    await asyncio.sleep(0)
                    await self.resync()  # what was published before the subscription
                    self._heard(await first)
                finally:
                    first.cancel()
                async for message in changes:
                    self._heard(message)
            except StoreError as exc:
                log.warning("kiosk change stream lost (%s); reading all kiosk states again", type(exc).__name__)
            finally:
                with contextlib.suppress(StoreError, RuntimeError):
                    await changes.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(retry_seconds)

    async def tick(self) -> None:
        """With the clock: staleness on this node's dashboards, a missed heartbeat into the history
        (once, by the first node to notice)."""
        self.registry.refresh_staleness()
        for kiosk_id, rec in list(self.registry.records.items()):
            s = rec.state
            if rec.stale and s.last_seen is not None and s.stopped_at is None and s.silence_noted != s.last_seen:
                try:
                    await self._step(kiosk_id, lambda s, now: ks.on_clock(s, now, self._limit))
                except StoreError as exc:
                    log.warning("kiosk history: could not note a silence (%s)", type(exc).__name__)

    async def prune(self) -> int:
        """Drop history older than ``history_days`` (every kiosk, every node's writes)."""
        return await self.store.prune_history(self.clock() - self.registry.settings.history_days * DAY)

    async def keep(self, tick_seconds: float, *, prune_seconds: float = 3600.0) -> None:
        """The app's background duty: :meth:`tick` every ``tick_seconds``, all states read again every
        ``resync_seconds`` (a message lost while the store's pub/sub reconnected is healed within one
        heartbeat interval), the history pruned every ``prune_seconds`` (and at start)."""
        loop = asyncio.get_running_loop()
        last_resync, next_prune = loop.time(), loop.time()
        while True:
            try:
                if loop.time() >= next_prune:
                    next_prune = loop.time() + prune_seconds
                    pruned = await self.prune()
                    if pruned:
                        log.info("kiosk history: %d old events pruned", pruned)
                every = self.resync_seconds or self.registry.settings.heartbeat_seconds
                if loop.time() - last_resync >= every:
                    last_resync = loop.time()
                    await self.resync()
                await self.tick()
            except StoreError as exc:
                log.warning("kiosk housekeeping failed (%s)", type(exc).__name__)
            await asyncio.sleep(tick_seconds)

    async def kiosk_history(self, kiosk_id: str, *, since: float, limit: int = 1000) -> list[KioskEvent]:
        return await self.store.kiosk_history(kiosk_id, since=since, limit=limit)


#: the kiosk app's service (handlers: ``request.app[SERVICE]``)
SERVICE: Final = web.AppKey("kiosk_service", KioskService)
