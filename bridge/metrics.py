"""Counters, the Kafka latency histogram, the per-device seq check, and their exporters.

The hot path bumps plain ints; Prometheus reads them only when scraped (a custom collector),
so observability costs no lock per message.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Stats:
    received: int = 0
    produced: int = 0
    acked: int = 0
    dead_lettered: int = 0
    delivery_failed: int = 0
    kafka_refused: int = 0
    seq_gaps: int = 0
    seq_missing: int = 0
    seq_duplicates: int = 0
    mqtt_connects: int = 0
    mqtt_unacked_dropped: int = 0
    in_flight: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    latency_sum: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        self.latency_buckets[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.latency_sum += seconds

    def counters(self) -> dict[str, int]:
        skip = {"latency_buckets", "latency_sum", "in_flight"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


class SeqTracker:
    """Last seq per (device, stream): flags gaps and duplicates as they pass, bounded memory.

    With one bridge it sees every message of a device; in a share group each process sees a
    subset, so gaps there are expected and only duplicates mean something.
    """

    def __init__(self, stats: Stats, max_keys: int) -> None:
        self.stats, self.max_keys = stats, max_keys
        self._last: dict[tuple[str, str], int] = {}

    def see(self, device_id: str, stream: str, seq: int) -> None:
        key = (device_id, stream)
        last = self._last.get(key)
        if last is None:
            if len(self._last) >= self.max_keys:
                # Forget the oldest half: a forgotten device just restarts its check.
                for old in list(self._last)[: self.max_keys // 2 or 1]:
                    del self._last[old]
            self._last[key] = seq
        elif seq == last + 1:
            self._last[key] = seq
        elif seq <= last:
            self.stats.seq_duplicates += 1
            log.debug(
                "seq duplicate or reorder: %s/%s seq %d after %d", device_id, stream, seq, last
            )
        else:
            self.stats.seq_gaps += 1
            self.stats.seq_missing += seq - last - 1
            log.debug("seq gap: %s/%s seq %d after %d", device_id, stream, seq, last)
            self._last[key] = seq


class StatsCollector(Collector):
    def __init__(self, stats: Stats, bridge_id: str) -> None:
        self.stats, self.bridge_id = stats, bridge_id

    def collect(self) -> Iterator[object]:
        s = self.stats
        for name, value in s.counters().items():
            c = CounterMetricFamily(f"cityfleet_bridge_{name}", f"Bridge {name}", labels=["bridge"])
            c.add_metric([self.bridge_id], value)
            yield c
        g = GaugeMetricFamily(
            "cityfleet_bridge_in_flight", "Received, not yet acked", labels=["bridge"]
        )
        g.add_metric([self.bridge_id], s.in_flight)
        yield g
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BOUNDS, float("inf")), s.latency_buckets, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        h = HistogramMetricFamily(
            "cityfleet_bridge_kafka_delivery_seconds",
            "Produce to Kafka delivery report",
            labels=["bridge"],
        )
        h.add_metric([self.bridge_id], buckets, s.latency_sum)
        yield h


def serve(stats: Stats, bridge_id: str, port: int, host: str = "127.0.0.1") -> None:
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, bridge_id))
    start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, port)


class RateLog:
    """One log line every ``interval`` seconds: totals and rates since the last line."""

    def __init__(self, stats: Stats, interval: float, now: float) -> None:
        self.stats, self.interval = stats, interval
        self._t, self._prev = now, stats.counters()
        self.next_at = now + interval if interval else float("inf")

    def tick(self, now: float) -> None:
        cur, dt = self.stats.counters(), max(now - self._t, 1e-9)
        rate = {k: (cur[k] - self._prev[k]) / dt for k in ("received", "acked")}
        log.info(
            "received %d (%.0f/s) acked %d (%.0f/s) dead-lettered %d in flight %d "
            "seq gaps %d dups %d",
            cur["received"],
            rate["received"],
            cur["acked"],
            rate["acked"],
            cur["dead_lettered"],
            self.stats.in_flight,
            cur["seq_gaps"],
            cur["seq_duplicates"],
        )
        self._t, self._prev, self.next_at = now, cur, now + self.interval
