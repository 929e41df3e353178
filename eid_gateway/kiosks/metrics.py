"""Prometheus metrics for kiosk states, read from the registry at scrape time.

A collector (instead of gauges kept in step by hand) means staleness, which depends only on the
clock, is always current, and there is one source of truth. Each app gets its own CollectorRegistry
so several gateway apps in one process (tests) do not clash.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cardreader.model import ReaderState, ServiceState
from eid_gateway.kiosks.registry import DOWN_WORDS, KioskRegistry

STATUS_WORDS = (
    list(DOWN_WORDS) + [s.value for s in ServiceState if s is not ServiceState.OK] + [s.value for s in ReaderState]
)


class KioskCollector(Collector):
    def __init__(self, registry: KioskRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        reg = self.registry
        reg.refresh_staleness()
        up = GaugeMetricFamily(
            "eid_kiosk_up", "1 when the kiosk reported within its heartbeat window", labels=["kiosk"]
        )
        status = GaugeMetricFamily(
            "eid_kiosk_status", "1 for the kiosk's current status word", labels=["kiosk", "status"]
        )
        seen = GaugeMetricFamily(
            "eid_kiosk_last_seen_timestamp_seconds", "time of the kiosk's last report", labels=["kiosk"]
        )
        queued = GaugeMetricFamily("eid_kiosk_agent_queue", "messages waiting in the kiosk agent", labels=["kiosk"])
        dropped = GaugeMetricFamily(
            "eid_kiosk_agent_dropped", "old states the kiosk agent had to drop", labels=["kiosk"]
        )
        counts = GaugeMetricFamily("eid_kiosks", "number of kiosks per status word", labels=["status"])
        for kid, rec in sorted(reg.records.items()):
            word = reg.status_word(rec)
            up.add_metric([kid], 0.0 if word in DOWN_WORDS else 1.0)
            for w in STATUS_WORDS:
                status.add_metric([kid, w], 1.0 if w == word else 0.0)
            if rec.state.last_seen is not None:
                seen.add_metric([kid], rec.state.last_seen)
            queued.add_metric([kid], float(rec.state.agent_queue))
            dropped.add_metric([kid], float(rec.state.agent_dropped))
        c = reg.counts()
        for w in STATUS_WORDS:
            counts.add_metric([w], float(c.get(w, 0)))
        yield from (up, status, seen, queued, dropped, counts)
        msgs = CounterMetricFamily("eid_kiosk_messages", "kiosk API messages by outcome", labels=["kind"])
        for kind, n in sorted(reg.counters.items()):
            msgs.add_metric([kind], float(n))
        yield msgs
        yield GaugeMetricFamily(
            "eid_kiosk_dashboard_streams", "open dashboard event streams", value=float(reg.subscriber_count)
        )


def metrics_registry(registry: KioskRegistry) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(KioskCollector(registry))
    return reg


def render_metrics(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
