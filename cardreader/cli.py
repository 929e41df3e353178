"""`eid-gateway readers [--watch] [--json]`: what an administrator sees on a kiosk.

One-shot lists readers, cards and PACE support; --watch prints every change until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import datetime
from types import FrameType
from typing import TextIO

from cardreader.model import KioskSnapshot, ReaderState, ServiceState, snapshot_to_json
from cardreader.monitor import PcscMonitor

_STATE_TEXT = {
    ReaderState.EMPTY: "no card",
    ReaderState.ID_CARD: "German ID card",
    ReaderState.OTHER_CARD: "card (not an eID card)",
    ReaderState.CARD_UNREADABLE: "card present, not readable",
    ReaderState.CARD_MUTE: "card does not answer",
    ReaderState.IN_USE: "card in use by another application",
    ReaderState.UNAVAILABLE: "reader unavailable",
}


def format_snapshot(snap: KioskSnapshot) -> str:
    """Plain text for a terminal; no personal data exists in a snapshot, so all of it can be shown."""
    if snap.service is ServiceState.PCSC_UNAVAILABLE:
        return f"PC/SC unavailable ({snap.detail or 'no service'}): is pcscd running?"
    if snap.service is ServiceState.NO_READERS:
        return "PC/SC running, no card reader attached"
    lines = []
    for r in snap.readers:
        lines.append(f"{r.name}: {_STATE_TEXT[r.state]}" + (f" [{r.detail}]" if r.detail else ""))
        if r.reader_pace is not None:
            caps = ", ".join(r.reader_pace) or "no capabilities reported"
            lines.append(f"  reader does PACE itself: {caps}")
        if r.card is not None:
            lines.append(f"  ATR {r.card.atr}" + ("  (known German ID card ATR)" if r.card.atr_known_eid else ""))
            for p in r.card.pace:
                param = f", parameters {p.parameter_id} = {p.parameter_name}" if p.parameter_id is not None else ""
                lines.append(f"  PACE {p.name} (v{p.version}{param})")
            for ca in r.card.chip_authentication:
                lines.append(f"  Chip Authentication {ca}")
            if r.card.terminal_authentication:
                lines.append("  Terminal Authentication v2")
    return "\n".join(lines)


def _print(snap: KioskSnapshot, as_json: bool, out: TextIO, stamp: bool) -> None:
    if as_json:
        doc = snapshot_to_json(snap)
        if stamp:
            doc["time"] = datetime.now().astimezone().isoformat(timespec="seconds")
        out.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        if stamp:
            out.write(f"--- {datetime.now().strftime('%H:%M:%S')}\n")
        out.write(format_snapshot(snap) + "\n")
    out.flush()


def readers_main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point for `eid-gateway readers`; returns 0, or 1 when PC/SC is unavailable (one-shot)."""
    ap = argparse.ArgumentParser(prog="eid-gateway readers", description="Show card readers, cards and PACE.")
    ap.add_argument("--watch", action="store_true", help="keep running and print every change")
    ap.add_argument("--json", action="store_true", help="one JSON document per line")
    args = ap.parse_args(argv)
    stream = out if out is not None else sys.stdout
    if not args.watch:
        snap = PcscMonitor(lambda s: None).snapshot_once()
        _print(snap, args.json, stream, stamp=False)
        return 1 if snap.service is ServiceState.PCSC_UNAVAILABLE else 0

    done = threading.Event()
    monitor = PcscMonitor(lambda s: _print(s, args.json, stream, stamp=True))

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    monitor.start()
    try:
        done.wait()  # signal handlers run in this thread and wake the wait
    finally:
        monitor.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return 0
