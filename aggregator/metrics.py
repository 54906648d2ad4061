"""Prometheus metrics for `/metrics`, on a registry of their own.

A `Metrics` owns its `CollectorRegistry` rather than using prometheus-client's global
one, so each daemon (and each test) counts only its own work. The poller and the web
app never import this module: the daemon feeds it poll results and the web app calls
the few methods it needs, so the core stays free of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from aggregator import __version__
from aggregator.model import SourceState
from aggregator.poll import SourceResult
from aggregator.status import HEALTHS, health_of

POLL_RESULTS = ("ok", "not_modified", "unchanged", "error", "gone")
# From a local 304 to a slow publisher at the default 30 s timeout.
FETCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RENDER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("aggregator", "The running aggregator.", registry=r).info({"version": __version__})
        self.polls = Counter(
            "aggregator_polls", "Polls of source feeds, by result.", ["result"], registry=r
        )
        for result in POLL_RESULTS:
            self.polls.labels(result)
        self.fetch_seconds = Histogram(
            "aggregator_fetch_seconds",
            "Time from connecting to the last byte of a source feed (or reading a file).",
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.fetched_bytes = Counter(
            "aggregator_fetched_bytes", "Source feed bytes received, after decompression.",
            registry=r,
        )  # fmt: skip
        self.entries = Counter(
            "aggregator_entries",
            "Entries stored: new ones, ones updated in place, and (duplicate) the new ones "
            "that joined a story another copy already carried instead of starting one.",
            ["kind"],
            registry=r,
        )
        for kind in ("new", "updated", "duplicate"):
            self.entries.labels(kind)
        self.moves = Counter(
            "aggregator_source_moves", "Sources moved to a new URL by a 301/308.", registry=r
        )
        self.sources = Gauge(
            "aggregator_sources", "Configured sources, by health.", ["health"], registry=r
        )
        self.sources_failing = Gauge(
            "aggregator_sources_failing",
            "Sources whose last poll failed, or that answered 410 Gone.",
            registry=r,
        )
        self.host_holds = Counter(
            "aggregator_retry_after_holds",
            "429/503 Retry-After answers that held back every source on their host.",
            registry=r,
        )
        self.renders = Counter(
            "aggregator_renders",
            "Output feed renders by the web server (render cache misses).",
            registry=r,
        )
        self.render_seconds = Histogram(
            "aggregator_render_seconds",
            "Time to select and render one output feed.",
            buckets=RENDER_BUCKETS,
            registry=r,
        )
        self.render_cache = Counter(
            "aggregator_render_cache",
            "Output feed requests by render cache outcome.",
            ["result"],
            registry=r,
        )
        for result in ("hit", "miss"):
            self.render_cache.labels(result)
        self.responses_304 = Counter(
            "aggregator_feed_not_modified",
            "Output feed requests answered 304 Not Modified.",
            registry=r,
        )
        self.scheduler_lag = Gauge(
            "aggregator_scheduler_lag_seconds",
            "How late the most overdue source claimed by the last scheduler tick was.",
            registry=r,
        )
        self.last_tick = Gauge(
            "aggregator_scheduler_last_tick_timestamp_seconds",
            "When the scheduler last claimed due sources successfully (Unix time).",
            registry=r,
        )
        self.in_flight = Gauge(
            "aggregator_polls_in_flight", "Polls started and not yet finished.", registry=r
        )
        self._failing: dict[str, bool] = {}
        self._health: dict[str, str] = {}

    # -- polls ---------------------------------------------------------------

    def observe_poll(self, result: SourceResult) -> None:
        if result.status == "skipped":
            return
        self.polls.labels(result.status).inc()
        if result.fetch_seconds is not None:
            self.fetch_seconds.observe(result.fetch_seconds)
        self.fetched_bytes.inc(result.bytes)
        self.entries.labels("new").inc(result.counts.new)
        self.entries.labels("duplicate").inc(result.counts.duplicates)
        self.entries.labels("updated").inc(result.counts.updated)
        if result.moved_to:
            self.moves.inc()
        if result.host_not_before is not None:
            self.host_holds.inc()
        if result.source in self._health:
            self._set_health(result.source, _health_of_status(result.status))

    def track_sources(self, states: Iterable[SourceState]) -> None:
        """Start the per-source health counts from what the store knows (start, reload)."""
        self._health = {state.name: health_of(state) for state in states}
        self._publish_health()

    def _set_health(self, name: str, health: str) -> None:
        self._health[name] = health
        self._publish_health()

    def _publish_health(self) -> None:
        counts = dict.fromkeys(HEALTHS, 0)
        for health in self._health.values():
            counts[health] = counts.get(health, 0) + 1
        for health, count in counts.items():
            self.sources.labels(health).set(count)
        self.sources_failing.set(counts["failing"] + counts["gone"])

    # -- output --------------------------------------------------------------

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _health_of_status(status: str) -> str:
    if status == "gone":
        return "gone"
    return "failing" if status == "error" else "ok"
