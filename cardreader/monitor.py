"""Watch PC/SC readers and cards and report whole KioskSnapshots on every change.

A dedicated thread blocks in SCardGetStatusChange (with the PnP pseudo-reader, so reader attach and
detach wake it too): no polling loop burns CPU. Every PC/SC failure becomes a state in the snapshot;
when pcscd goes away the context is released and re-established with a pause between attempts,
because a context never survives a pcscd restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cardreader import pcsc
from cardreader.features import (
    FEATURE_EXECUTE_PACE,
    FeatureError,
    get_pace_capabilities_command,
    parse_feature_tlvs,
    parse_pace_capabilities,
)
from cardreader.identify import card_info, reader_pace_from, state_from_error, state_from_flags
from cardreader.model import KioskSnapshot, ReaderState, ReaderStatus, ServiceState
from tr03110.apdu import ApduError, CardStatusError, read_card_access
from tr03110.security_infos import SecurityInfosError, parse_security_infos

log = logging.getLogger(__name__)

Listener = Callable[[KioskSnapshot], None]
RETRY_READ_MS = 500
MAX_READ_ATTEMPTS = 5


@dataclass
class _Known:
    """What we learnt about the card currently in a reader (cached per insertion)."""

    key: tuple[int, bytes]
    status: ReaderStatus
    definitive: bool = True
    flags: int = 0  # for a result we gave up retrying: a flag change (card released) retries


_USE_FLAGS = pcsc.STATE_PRESENT | pcsc.STATE_INUSE | pcsc.STATE_EXCLUSIVE | pcsc.STATE_MUTE


class PcscMonitor:
    """Runs in its own thread (start/stop); calls *listener* with each changed snapshot.

    The listener is called from the monitor thread: hand the snapshot over to your loop with
    loop.call_soon_threadsafe.
    """

    def __init__(
        self,
        listener: Listener,
        *,
        retry_interval: float = 1.0,
        wake_interval: float = 30.0,
        context_factory: Callable[[], pcsc.PcscContext] = pcsc.PcscContext,
    ) -> None:
        self._listener = listener
        self._retry = retry_interval
        self._wake_ms = int(wake_interval * 1000)
        self._factory = context_factory
        self._stop = threading.Event()
        self._ctx: pcsc.PcscContext | None = None
        self._ctx_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last: KioskSnapshot | None = None
        self._cards: dict[str, _Known] = {}
        # readers whose card could not be read yet: (insertion key, attempts so far)
        self._retry_cards: dict[str, tuple[tuple[int, bytes], int]] = {}
        self._in_use: set[str] = set()  # readers whose card another application holds
        self._reader_pace: dict[str, tuple[str, ...] | None] = {}

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="pcsc-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join. SCardCancel only wakes a call already blocking, so it is repeated until
        the thread has left (a cancel that lands between two calls would otherwise be lost)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        while True:
            with self._ctx_lock:
                if self._ctx is not None:
                    try:
                        self._ctx.cancel()
                    except Exception:  # cancel on a dead context: the loop exits on its own
                        pass
            if self._thread is None:
                return
            self._thread.join(0.05)
            if not self._thread.is_alive() or time.monotonic() > deadline:
                return

    @property
    def last(self) -> KioskSnapshot | None:
        return self._last

    def snapshot_once(self) -> KioskSnapshot:
        """One look at readers and cards, without watching (the `readers` one-shot view)."""
        try:
            ctx = self._factory()
        except pcsc.PcscError as exc:
            return KioskSnapshot(service=ServiceState.PCSC_UNAVAILABLE, detail=exc.name)
        try:
            readers = ctx.list_readers()
            events = ctx.get_status_change(0, [(r, pcsc.STATE_UNAWARE) for r in readers])
            return self._snapshot(ctx, readers, events)
        except pcsc.PcscError as exc:
            return KioskSnapshot(service=ServiceState.PCSC_UNAVAILABLE, detail=exc.name)
        finally:
            ctx.release()

    # -- loop -----------------------------------------------------------------------------------
    def run(self) -> None:
        while not self._stop.is_set():
            try:
                ctx = self._factory()
            except pcsc.PcscError as exc:
                self._emit(KioskSnapshot(service=ServiceState.PCSC_UNAVAILABLE, detail=exc.name))
                self._stop.wait(self._retry)
                continue
            with self._ctx_lock:
                self._ctx = ctx
            try:
                self._watch(ctx)
            except pcsc.PcscError as exc:
                if not self._stop.is_set():
                    log.warning("PC/SC context lost (%s), re-establishing", exc.name)
                    self._emit(KioskSnapshot(service=ServiceState.PCSC_UNAVAILABLE, detail=exc.name))
                    self._cards.clear()
                    self._retry_cards.clear()
                    self._in_use.clear()
                    self._reader_pace.clear()
                    self._stop.wait(self._retry)
            finally:
                with self._ctx_lock:
                    self._ctx = None
                try:
                    ctx.release()
                except Exception:
                    pass

    def _watch(self, ctx: pcsc.PcscContext) -> None:
        """Watch until the service goes away (PcscError from SERVICE_GONE) or stop is asked."""
        pnp = True
        while not self._stop.is_set():
            readers = ctx.list_readers()
            states = [(r, pcsc.STATE_UNAWARE) for r in readers]
            if pnp:
                states.append((pcsc.PNP_NOTIFICATION, pcsc.STATE_UNAWARE))
            events = ctx.get_status_change(0, states)
            if pnp and any(e.reader == pcsc.PNP_NOTIFICATION and e.flags & pcsc.STATE_UNKNOWN for e in events):
                pnp = False  # this PC/SC has no PnP notification: fall back to waking up now and then
            for r in list(self._reader_pace):
                if r not in readers:
                    del self._reader_pace[r]
            while not self._stop.is_set():
                self._emit(self._snapshot(ctx, readers, events))
                current = [(e.reader, e.event_state) for e in events if pnp or e.reader != pcsc.PNP_NOTIFICATION]
                timeout = self._wake_ms if pnp else min(self._wake_ms, 2000)
                # pcscd does not always wake a waiter when another application releases a card,
                # and a failed read deserves another try: look again soon while either is pending.
                recheck = bool(self._retry_cards or self._in_use)
                if recheck:
                    timeout = min(timeout, RETRY_READ_MS)
                try:
                    new = ctx.get_status_change(timeout, current)
                except pcsc.PcscError as exc:
                    if exc.code == pcsc.E_TIMEOUT:
                        if not pnp or recheck:
                            break  # fetch fresh states (and re-list readers)
                        continue
                    if exc.code == pcsc.E_CANCELLED:
                        return
                    if exc.code in (pcsc.E_READER_UNAVAILABLE, pcsc.E_UNKNOWN_READER):
                        break
                    raise
                if any(e.reader == pcsc.PNP_NOTIFICATION and e.flags & pcsc.STATE_CHANGED for e in new):
                    break  # a reader came or went: list again
                events = [e for e in new if e.reader != pcsc.PNP_NOTIFICATION] + [
                    e for e in events if e.reader == pcsc.PNP_NOTIFICATION
                ]

    # -- snapshot -------------------------------------------------------------------------------
    def _snapshot(self, ctx: pcsc.PcscContext, readers: list[str], events: list[pcsc.ReaderEvent]) -> KioskSnapshot:
        if not readers:
            self._cards.clear()
            self._in_use.clear()
            self._retry_cards.clear()
            return KioskSnapshot(service=ServiceState.NO_READERS)
        statuses = []
        for ev in events:
            if ev.reader == pcsc.PNP_NOTIFICATION:
                continue
            statuses.append(self._reader_status(ctx, ev))
        return KioskSnapshot(service=ServiceState.OK, readers=tuple(statuses))

    def _reader_status(self, ctx: pcsc.PcscContext, ev: pcsc.ReaderEvent) -> ReaderStatus:
        status = self._reader_status_inner(ctx, ev)
        if status.state is ReaderState.IN_USE:
            self._in_use.add(ev.reader)
        else:
            self._in_use.discard(ev.reader)
        return status

    def _reader_status_inner(self, ctx: pcsc.PcscContext, ev: pcsc.ReaderEvent) -> ReaderStatus:
        if ev.reader in self._reader_pace:
            reader_pace = self._reader_pace[ev.reader]
        else:
            reader_pace, settled = self._probe_reader_pace(ctx, ev.reader)
            if settled:
                self._reader_pace[ev.reader] = reader_pace
        simple = state_from_flags(ev.flags)
        if simple is not None:
            if simple is ReaderState.EMPTY or simple is ReaderState.UNAVAILABLE:
                self._cards.pop(ev.reader, None)
            self._retry_cards.pop(ev.reader, None)
            known = self._cards.get(ev.reader)
            card = known.status.card if known is not None and known.key == (ev.counter, ev.atr) else None
            return ReaderStatus(name=ev.reader, state=simple, card=card, reader_pace=reader_pace)
        key = (ev.counter, ev.atr)
        known = self._cards.get(ev.reader)
        if known is not None and known.key == key and (known.definitive or known.flags == ev.flags & _USE_FLAGS):
            return known.status
        status, definitive = self._identify(ctx, ev, reader_pace)
        if definitive:
            self._cards[ev.reader] = _Known(key=key, status=status)
            self._retry_cards.pop(ev.reader, None)
        else:
            # A failed read (card still settling, a previous card's slot not yet cleared) is tried
            # again a few times; after that only a state change triggers a new attempt.
            prev_key, attempts = self._retry_cards.get(ev.reader, (key, 0))
            attempts = attempts + 1 if prev_key == key else 1
            if attempts >= MAX_READ_ATTEMPTS:
                self._cards[ev.reader] = _Known(key, status, definitive=False, flags=ev.flags & _USE_FLAGS)
                self._retry_cards.pop(ev.reader, None)
            else:
                self._retry_cards[ev.reader] = (key, attempts)
        return status

    def _identify(
        self, ctx: pcsc.PcscContext, ev: pcsc.ReaderEvent, reader_pace: tuple[str, ...] | None
    ) -> tuple[ReaderStatus, bool]:
        """Read EF.CardAccess; the bool says whether the result holds for this whole insertion."""
        try:
            conn = ctx.connect(ev.reader)
        except pcsc.PcscError as exc:
            if exc.code in pcsc.SERVICE_GONE:
                raise
            return ReaderStatus(ev.reader, state_from_error(exc.code), None, reader_pace, exc.name), False
        try:
            if ev.reader not in self._reader_pace:  # the direct probe found the reader busy
                reader_pace = self._reader_pace[ev.reader] = self._query_pace(conn)
            detail = None
            try:
                infos = parse_security_infos(read_card_access(conn.transmit))
            except (CardStatusError, SecurityInfosError) as exc:
                # the card answered properly: it has no (valid) EF.CardAccess, so it is no eID card
                log.info("reader %r: card without eID SecurityInfos (%s)", ev.reader, exc)
                infos = None
                detail = "no EF.CardAccess" if isinstance(exc, CardStatusError) else "EF.CardAccess malformed"
            except ApduError as exc:
                # answers that break ISO 7816-4 framing: a faulty or half-inserted card, try again
                log.info("reader %r: card answers malformed responses (%s)", ev.reader, exc)
                return ReaderStatus(
                    ev.reader, ReaderState.CARD_UNREADABLE, None, reader_pace, "malformed response"
                ), False
            state, info = card_info(ev.atr, infos)
            return ReaderStatus(ev.reader, state, info, reader_pace, detail), True
        except pcsc.PcscError as exc:
            if exc.code in pcsc.SERVICE_GONE:
                raise
            return ReaderStatus(ev.reader, state_from_error(exc.code), None, reader_pace, exc.name), False
        finally:
            try:
                conn.close()
            except Exception:
                pass

    def _probe_reader_pace(self, ctx: pcsc.PcscContext, reader: str) -> tuple[tuple[str, ...] | None, bool]:
        """Ask the reader (direct connection, no card needed) whether it does PACE itself; the bool
        is False when the reader was busy (another application holds it) and we should ask later."""
        try:
            conn = ctx.connect(reader, direct=True)
        except pcsc.PcscError as exc:
            if exc.code in pcsc.SERVICE_GONE:
                raise
            return None, exc.code != pcsc.E_SHARING_VIOLATION
        try:
            return self._query_pace(conn), True
        finally:
            try:
                conn.close()
            except Exception:
                pass

    @staticmethod
    def _query_pace(conn: pcsc.CardConnection) -> tuple[str, ...] | None:
        try:
            features = parse_feature_tlvs(conn.features())
        except (pcsc.PcscError, FeatureError):
            return None
        caps = None
        if FEATURE_EXECUTE_PACE in features:
            try:
                caps = parse_pace_capabilities(
                    conn.control(features[FEATURE_EXECUTE_PACE], get_pace_capabilities_command())
                )
            except (pcsc.PcscError, FeatureError) as exc:
                log.info("reader PACE capabilities not readable: %s", exc)
        return reader_pace_from(features, caps)

    def _emit(self, snap: KioskSnapshot) -> None:
        if snap == self._last:
            return
        self._last = snap
        try:
            self._listener(snap)
        except Exception:  # a listener bug must not stop the watch
            log.exception("snapshot listener failed")
