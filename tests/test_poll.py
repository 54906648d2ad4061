"""The polling promises, end to end through the real Poller, store and a real feed server.

Time is a fake clock (tests/pollharness.py), so days of polling take a second or two;
every request is real and recorded by the server.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer, Reply, Request
from pollharness import T0, PollHarness, make_config

from aggregator import __version__, poll
from aggregator.daemon import Daemon
from aggregator.model import PollRecord, SaveCounts, SourceState
from aggregator.poll import Poller, PollSummary, new_fetcher, run_pass, utcnow
from aggregator.store import Store

H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


def rss(*items: str, channel_extra: str = "") -> bytes:
    body = "".join(
        f"<item><guid>{item}</guid><title>{item}</title>"
        f"<link>https://site.example/{item}</link></item>"
        for item in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel>'
        f"<title>Feed</title><link>https://site.example/</link>{channel_extra}{body}"
        "</channel></rss>"
    ).encode()


FEED = rss("one", "two")


@pytest.fixture
def harness_for(tmp_path: Path) -> Iterator[Callable[..., PollHarness]]:
    made: list[PollHarness] = []

    def make(sources: dict[str, str], **settings: str | int) -> PollHarness:
        harness = PollHarness(tmp_path, sources, **settings)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def requests_to(server: FeedServer, path: str) -> list[Request]:
    return [r for r in server.requests if r.path == path]


# -- conditional requests and validators ----------------------------------------


def test_second_poll_sends_the_validators_byte_for_byte_and_a_304_stores_nothing(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    etag, modified = 'W/"5f-caf\xe9"', "Mon, 02 Mar 2026 08:00:00 GMT"
    feed_server.add("/f", FEED, etag=etag, last_modified=modified)
    harness = harness_for({"a": feed_server.url("/f")})
    [first] = harness.poll_due()
    assert (first.status, first.counts.new) == ("ok", 2)
    harness.advance(H)
    [second] = harness.poll_due()
    assert (second.status, second.counts.new, second.bytes) == ("not_modified", 0, 0)
    sent = requests_to(feed_server, "/f")[1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (etag, modified)


def test_new_etag_on_an_unchanged_body_is_stored_and_sent_next_time(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    feed_server.add("/f", FEED, etag='"v1"')
    harness = harness_for({"a": feed_server.url("/f")})
    harness.poll_due()
    feed_server.add("/f", FEED, etag='"v2"')  # what `touch` does to a file behind Apache
    harness.advance(H)
    [unchanged] = harness.poll_due()
    assert unchanged.status == "unchanged"
    assert harness.state("a").validators.etag == '"v2"'
    harness.advance(H)
    [after] = harness.poll_due()
    assert after.status == "not_modified"
    assert requests_to(feed_server, "/f")[2].headers["if-none-match"] == '"v2"'


def test_304_carrying_a_new_etag_is_stored_and_sent_next_time(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    feed_server.add("/f", FEED, etag='"v1"')
    harness = harness_for({"a": feed_server.url("/f")})
    harness.poll_due()
    feed_server.handler("/f", lambda r: Reply(304, headers={"ETag": '"v3"'}))
    harness.advance(H)
    assert harness.poll_due()[0].status == "not_modified"
    assert harness.state("a").validators.etag == '"v3"'
    harness.advance(H)
    harness.poll_due()
    assert requests_to(feed_server, "/f")[2].headers["if-none-match"] == '"v3"'


def test_a_day_of_polls_is_all_conditional_with_the_same_headers_and_no_cruft(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    feed_server.add(
        "/f?x=1",
        FEED,
        etag='"v1"',
        last_modified="Mon, 02 Mar 2026 08:00:00 GMT",
        headers={"Set-Cookie": "tracker=1; Path=/"},
    )
    harness = harness_for({"a": feed_server.url("/f?x=1")}, base_url="https://agg.example")
    harness.run_for(D)
    sent = feed_server.requests
    assert len(sent) == 24
    assert {r.path for r in sent} == {"/f?x=1"}  # no cache-busting query added or dropped
    assert {r.headers["user-agent"] for r in sent} == {
        f"aggregator/{__version__} (+https://agg.example)"
    }
    for request in sent:
        for kind in ("application/atom+xml", "application/rss+xml", "application/feed+json"):
            assert kind in request.headers["accept"]
        assert "cookie" not in request.headers
        assert "referer" not in request.headers
    assert all("if-none-match" in r.headers for r in sent[1:])  # never an unconditional refetch
    assert [r.status for r in harness.results] == ["ok"] + ["not_modified"] * 23


# -- how often ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "serve", "settings", "per_day"),
    [
        ("interval 1h", {}, {"interval": "1h"}, 24),
        ("interval 30m", {}, {"interval": "30m"}, 48),
        ("max-age 2h lengthens", {"headers": {"Cache-Control": "max-age=7200"}}, {}, 12),
        ("max-age 10m cannot shorten", {"headers": {"Cache-Control": "max-age=600"}}, {}, 24),
        ("no-cache is no hint", {"headers": {"Cache-Control": "no-cache, max-age=9"}}, {}, 24),
        ("rss ttl 180 lengthens", {"body": rss("a", channel_extra="<ttl>180</ttl>")}, {}, 8),
        (
            "sy:updatePeriod daily lengthens",
            {"body": rss("a", channel_extra="<sy:updatePeriod>daily</sy:updatePeriod>")},
            {"interval": "1h"},
            1,
        ),
        (
            "sy:updateFrequency divides the period",
            {
                "body": rss(
                    "a",
                    channel_extra="<sy:updatePeriod>daily</sy:updatePeriod>"
                    "<sy:updateFrequency>4</sy:updateFrequency>",
                )
            },
            {},
            4,
        ),
        ("ttl past max_interval", {"body": rss("a", channel_extra="<ttl>600</ttl>")},
         {"max_interval": "4h"}, 6),
        ("interval under min_interval", {}, {"interval": "1m", "min_interval": "15m"}, 96),
    ],
)  # fmt: skip
def test_requests_per_day_to_an_unchanged_feed(
    feed_server: FeedServer,
    harness_for: Callable[..., PollHarness],
    case: str,
    serve: dict[str, object],
    settings: dict[str, str],
    per_day: int,
) -> None:
    body = serve.pop("body", FEED)
    feed_server.add("/f", body, etag='"v1"', **serve)  # type: ignore[arg-type]
    harness = harness_for({"a": feed_server.url("/f")}, **settings)
    harness.run_for(D)
    assert feed_server.hits("/f") == per_day, case


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_holds_every_source_on_the_host(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness], status: int, form: str
) -> None:
    wait = 5 * H
    value = str(int(wait.total_seconds())) if form == "seconds" else ""
    answered = threading.Event()

    def limited(request: Request) -> Reply:
        if answered.is_set():
            return Reply(200, FEED, {"Content-Type": "application/rss+xml"})
        answered.set()
        # The date form is computed from the poller's fake clock at the time it asks.
        retry = value or format_datetime(harness.clock.now + wait, usegmt=True)
        return Reply(status, b"slow down", {"Retry-After": retry})

    feed_server.handler("/limited", limited)
    feed_server.add("/other", FEED)
    harness = harness_for({"a": feed_server.url("/limited")})
    harness.poll_due()
    assert (harness.results[-1].status, harness.results[-1].http_status) == ("error", status)
    # A second source on the same host, added after the 429/503: it waits too.
    harness.reconfigure({"a": feed_server.url("/limited"), "b": feed_server.url("/other")})
    harness.run_for(wait - M)
    assert feed_server.hits("/limited") == 1
    assert feed_server.hits("/other") == 0
    assert harness.state("b").host_not_before == T0 + wait
    harness.run_for(2 * M)
    assert feed_server.hits("/limited") == 2
    assert feed_server.hits("/other") == 1


def test_a_source_queued_behind_a_429_on_its_host_is_deferred_not_fetched(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    feed_server.handler("/limited", lambda r: Reply(429, b"slow down", {"Retry-After": "600"}))
    feed_server.add("/other", FEED)
    # One request per host at a time: b waits for a's slot, and a's answer holds the host.
    harness = harness_for(
        {"a": feed_server.url("/limited"), "b": feed_server.url("/other")}, per_host=1
    )
    results = {result.source: result for result in harness.poll_due()}
    assert (results["a"].status, results["a"].http_status) == ("error", 429)
    assert results["b"].status == "skipped"
    assert feed_server.hits("/other") == 0
    deferred = harness.state("b")
    assert deferred.error_count == 0 and deferred.last_status is None
    assert deferred.claimed_by is None
    assert deferred.next_poll_at is not None
    assert T0 + 9 * M < deferred.next_poll_at <= T0 + 10 * M


def test_backoff_doubles_on_500s_with_jitter_and_resets_on_success(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    failing = threading.Event()
    failing.set()

    def flaky(request: Request) -> Reply:
        if failing.is_set():
            return Reply(500, b"oops")
        return Reply(200, FEED, {"Content-Type": "application/rss+xml"})

    feed_server.handler("/f", flaky)
    harness = harness_for({"a": feed_server.url("/f")}, interval="1h", max_interval="12h")
    harness.run_for(2 * D)
    times = harness.pass_times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    expected = [H, 2 * H, 4 * H, 8 * H, 12 * H, 12 * H]
    assert len(gaps) >= len(expected)
    for gap, nominal in zip(gaps, expected, strict=False):
        assert nominal * 0.8 <= gap <= nominal, (gaps, expected)
    assert len(set(gaps[4:])) > 1  # jitter spreads even the capped retries
    assert harness.state("a").error_count == len(times)
    failing.clear()
    upcoming = harness.next_due()
    assert upcoming is not None
    harness.clock.now = upcoming
    assert harness.poll_due()[0].status == "ok"
    assert harness.state("a").error_count == 0
    assert harness.state("a").next_poll_at == harness.clock.now + H


# -- redirects and 410 ----------------------------------------------------------


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_moves_the_source_for_good(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness], code: int
) -> None:
    feed_server.redirect("/old", "/new", code)
    feed_server.add("/new", FEED, etag='"n1"')
    harness = harness_for({"a": feed_server.url("/old")})
    [moved] = harness.poll_due()
    assert moved.moved_to == feed_server.url("/new")
    state = harness.state("a")
    assert (state.url, state.moved_from) == (feed_server.url("/new"), feed_server.url("/old"))
    harness.run_for(D)
    assert feed_server.hits("/old") == 1
    assert feed_server.hits("/new") == 24
    # A reload with the same configuration does not move it back.
    harness.store.sync_sources(harness.config.sources.values())
    assert harness.state("a").url == feed_server.url("/new")


@pytest.mark.parametrize("code", [302, 307])
def test_temporary_redirect_keeps_the_configured_url(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness], code: int
) -> None:
    feed_server.redirect("/old", "/new", code)
    feed_server.add("/new", FEED)
    harness = harness_for({"a": feed_server.url("/old")})
    harness.run_for(3 * H)
    assert (feed_server.hits("/old"), feed_server.hits("/new")) == (3, 3)
    assert harness.state("a").url == feed_server.url("/old")


def test_410_disables_the_source_and_it_is_never_polled_again(
    feed_server: FeedServer, harness_for: Callable[..., PollHarness]
) -> None:
    feed_server.handler("/gone", lambda r: Reply(410, b"gone for good"))
    feed_server.add("/alive", FEED)
    harness = harness_for({"a": feed_server.url("/gone"), "b": feed_server.url("/alive")})
    harness.run_for(2 * D)
    assert feed_server.hits("/gone") == 1
    assert feed_server.hits("/alive") == 48
    state = harness.state("a")
    assert (state.gone, state.last_status, state.http_status) == (True, "gone", 410)
    assert "HTTP 410" in (state.last_error or "")


class _GroupsSeen(Store):
    """The real store, noting how many polls each transaction of the writer carried."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.groups: list[tuple[int, int]] = []  # (polls, entries) per record_polls

    def record_polls(self, records: Sequence[PollRecord]) -> list[SaveCounts]:
        self.groups.append(
            (len(records), sum(len(r.feed.entries) if r.feed else 0 for r in records))
        )
        return super().record_polls(records)


def test_documents_share_group_commits_only_where_one_writer_is_all_there_is(
    feed_server: FeedServer, db_url: str, tmp_path: Path
) -> None:
    """On SQLite the polls that queue behind a write go in one transaction, documents
    included; on PostgreSQL, where other pollers write meanwhile, a document goes alone
    (a conflict would cost the whole group). Either way every entry is stored once."""
    names = {f"s{n:02d}": feed_server.url(f"/f{n}") for n in range(24)}
    for n in range(24):
        feed_server.add(
            f"/f{n}",
            rss(*(f"g{n}-{i}" for i in range(5))),
        )
    config = make_config(tmp_path, names, database=db_url, concurrency=8)
    store = _GroupsSeen(db_url)
    store.upgrade()
    store.sync_sources(config.sources.values())
    try:
        summary = asyncio.run(run_pass(config, store, force=True))
    finally:
        store.close()
    assert summary.counts.new == 24 * 5
    assert sum(polls for polls, _ in store.groups) == 24
    documents_per_group = max(polls for polls, entries in store.groups if entries)
    if db_url.startswith("sqlite"):
        assert documents_per_group > 1, store.groups
    else:
        assert all(polls == 1 for polls, entries in store.groups if entries), store.groups


class _HeldWrites(Store):
    """The real store, whose first write waits until the test lets it go: a writer
    slowed down for as long as the test needs to look at what goes on meanwhile."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.release = threading.Event()
        self.writing = threading.Event()
        self.written: list[str] = []
        # How many polls the held write carries: one, or more when further records
        # were queued before the writer task first ran (it groups what it finds).
        self.held_polls = 0

    def _hold(self, polls: int) -> None:
        if not self.writing.is_set():
            self.held_polls = polls
            self.writing.set()
            assert self.release.wait(60), "the test never let the write go"

    def record_polls(self, records: Sequence[PollRecord]) -> list[SaveCounts]:
        # Every write comes here (record_poll is a group of one).
        self._hold(len(records))
        self.written.extend(record.source for record in records)
        return super().record_polls(records)


def _serve_documents(server: FeedServer, documents: int, tag: str) -> dict[str, str]:
    """`documents` feeds of five entries each on `server`, by source name."""
    for n in range(documents):
        server.add(f"/f{n}", rss(*(f"{tag}{n}-{i}" for i in range(5))))
    return {f"s{n:02d}": server.url(f"/f{n}") for n in range(documents)}


@dataclass
class _HeldPass:
    store: _HeldWrites
    summary: PollSummary | None = None  # once the pass has ended


@contextmanager
def _held_pass(feed_server: FeedServer, tmp_path: Path, documents: int) -> Iterator[_HeldPass]:
    """A pass over `documents` feeds, running in a thread, its first write held until
    the block ends; then the pass is let go, waited for and its summary kept."""
    names = _serve_documents(feed_server, documents, "h")
    url = f"sqlite:///{tmp_path / 'held.db'}"
    # concurrency 1: two polls fetch and parse at once
    config = make_config(tmp_path, names, database=url, concurrency=1)
    store = _HeldWrites(url)
    store.upgrade()
    store.sync_sources(config.sources.values())
    outcome: list[object] = []
    thread = threading.Thread(
        target=lambda: outcome.append(asyncio.run(run_pass(config, store, force=True)))
    )
    thread.start()
    held = _HeldPass(store)
    try:
        assert store.writing.wait(30)
        yield held
    finally:
        store.release.set()
        thread.join(30)
        store.close()
    (summary,) = outcome
    assert isinstance(summary, PollSummary)
    held.summary = summary


def _requests_settle(server: FeedServer, at_least: int) -> int:
    """The number of requests once it has reached `at_least` (or 10 s went by: well
    inside the held write's patience) and stopped growing."""
    deadline = time.monotonic() + 10
    while len(server.requests) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = -1
    while seen != len(server.requests):
        seen = len(server.requests)
        time.sleep(0.3)
    return seen


def test_fetching_goes_on_while_the_writer_writes(feed_server: FeedServer, tmp_path: Path) -> None:
    """A poll leaves its place among the two that fetch once its record waits for the
    writer: with the first write held, all twelve documents are fetched meanwhile (with
    the place held to the commit, it stopped at two). Every entry is stored once."""
    with _held_pass(feed_server, tmp_path, 12) as held:
        assert _requests_settle(feed_server, 12) == 12
        assert len(held.store.written) == 0
    assert held.summary is not None and held.summary.counts.new == 12 * 5
    assert sorted(held.store.written) == sorted(f"s{n:02d}" for n in range(12))


def test_what_waits_for_the_writer_is_bounded_by_its_entries(
    feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 10 queued entries (two documents of five), a held first write stops
    fetching four documents past those it carries: two queued, and the two that keep
    their places while they wait for room. Let go, the pass stores everything once."""
    monkeypatch.setattr(poll, "WRITE_BACKLOG", 10)
    with _held_pass(feed_server, tmp_path, 12) as held:
        # Usually the held write carries the first document alone; now and then the
        # second was queued before the writer first ran, and went into the same write.
        assert held.store.held_polls in (1, 2)
        assert _requests_settle(feed_server, held.store.held_polls + 4) == (
            held.store.held_polls + 4
        )
    assert held.summary is not None and held.summary.counts.new == 12 * 5
    assert len(feed_server.requests) == 12


def test_the_daemon_claims_again_for_polls_that_only_wait_for_the_writer(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """The daemon's claims count the polls that still fetch and parse, not those queued
    for the writer: with its first write held and room for two polls fetching, its ticks
    go on claiming until all twelve sources are fetched."""
    names = _serve_documents(feed_server, 12, "d")
    config = make_config(tmp_path, names, concurrency=1)
    daemon = Daemon(config, tmp_path / "aggregator.toml", role="poller")
    daemon.store.close()
    store = daemon.store = _HeldWrites(config.settings.database)
    store.upgrade()
    store.sync_sources(config.sources.values())
    assert daemon.capacity == 2

    async def ticks() -> tuple[int, int]:
        async with new_fetcher(config) as fetcher:
            daemon.poller = Poller(config, store, fetcher, owner=daemon.owner)
            deadline = time.monotonic() + 10
            while len(feed_server.requests) < 12 and time.monotonic() < deadline:
                await daemon._claim()
                await asyncio.sleep(0.05)
            fetched, queued = len(feed_server.requests), len(daemon.writing)
            store.release.set()
            await asyncio.gather(*daemon.in_flight)
            return fetched, queued

    fetched, queued = asyncio.run(ticks())
    store.close()
    assert fetched == 12
    assert queued >= 10  # all but the one being written and one still finishing
    assert sorted(store.written) == sorted(names)
    assert not daemon.writing and not daemon.in_flight


def test_a_poller_claims_between_ticks_while_more_sources_are_due(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """One tick, and a tick so long that no second one comes: twelve due sources and two
    polling places. The polls that end claim the next ones, so all twelve are polled
    within seconds, each once; with claims on ticks alone, two were, and the rest waited
    for the next tick (a poller could start only `capacity` polls per tick)."""
    names = _serve_documents(feed_server, 12, "t")
    config = make_config(tmp_path, names, concurrency=1)
    daemon = Daemon(config, tmp_path / "aggregator.toml", tick=3600, role="poller")
    daemon.store.upgrade()
    daemon.store.sync_sources(config.sources.values())
    assert daemon.capacity == 2
    busiest = 0

    async def one_tick() -> None:
        nonlocal busiest
        async with new_fetcher(config) as fetcher:
            daemon.poller = Poller(config, daemon.store, fetcher, owner=daemon.owner)
            await daemon.on_tick()
            deadline = time.monotonic() + 10
            while len(feed_server.requests) < 12 and time.monotonic() < deadline:
                busiest = max(busiest, len(daemon.in_flight) - len(daemon.writing))
                await asyncio.sleep(0.005)
            while daemon.in_flight or daemon._ticking:
                await asyncio.sleep(0.01)

    asyncio.run(one_tick())
    polled = sorted(request.path for request in feed_server.requests)
    daemon.store.close()
    assert polled == sorted(f"/f{n}" for n in range(12))  # every source, each once
    assert busiest <= daemon.capacity


def test_a_claim_that_returns_after_shutdown_began_starts_no_poll(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    """Shutdown waits for the polls it finds in flight; a claim (a tick's, or one between
    ticks) still running when it begins must not start polls after it, and gives back
    what it took, so the sources are due again at once for any poller."""
    names = _serve_documents(feed_server, 4, "x")
    config = make_config(tmp_path, names, concurrency=1)
    daemon = Daemon(config, tmp_path / "aggregator.toml", tick=3600, role="poller")
    store = daemon.store
    store.upgrade()
    store.sync_sources(config.sources.values())
    claim_due = store.claim_due

    async def claim_as_shutdown_begins() -> int:
        loop = asyncio.get_running_loop()

        def claim_then_stop(*args: Any, **kwargs: Any) -> list[SourceState]:
            states = claim_due(*args, **kwargs)
            loop.call_soon_threadsafe(daemon.stopping.set)  # before the claim returns
            return states

        store.claim_due = claim_then_stop  # type: ignore[method-assign]
        async with new_fetcher(config) as fetcher:
            daemon.poller = Poller(config, store, fetcher, owner=daemon.owner)
            await daemon._claim()
            started = len(daemon.in_flight)
            await asyncio.sleep(0.5)  # time enough for a started poll to send its request
            return started

    started = asyncio.run(claim_as_shutdown_begins())
    store.claim_due = claim_due  # type: ignore[method-assign]
    assert started == 0 and not feed_server.requests
    again = store.claim_due(utcnow(), owner="poll:other", lease=timedelta(minutes=10), limit=10)
    store.close()
    assert sorted(state.name for state in again) == sorted(names)


def test_a_pass_takes_a_hosts_sources_together_so_its_connections_serve_several(
    tmp_path: Path,
) -> None:
    # Six hosts of four feeds each, named so that the claim order deals them out
    # round-robin, as a list of feeds from many sites often is; four requests at once
    # through a pool of four connections. Taken in that order, each request found the
    # pool holding other hosts' connections and opened one of its own.
    hosts = 6
    with ExitStack() as stack:
        servers = [stack.enter_context(FeedServer(f"127.0.0.{2 + n}")) for n in range(hosts)]
        names = {}
        for n in range(4 * hosts):
            server = servers[n % hosts]
            server.add(f"/f{n}", rss(f"c{n}"), etag=f'"v{n}"')
            names[f"s{n:02d}"] = server.url(f"/f{n}")
        config = make_config(tmp_path, names, concurrency=4, per_host=2)
        store = Store(config.settings.database)
        store.upgrade()
        store.sync_sources(config.sources.values())
        first = asyncio.run(run_pass(config, store, force=True))
        after_first = [server.connections for server in servers]
        second = asyncio.run(run_pass(config, store, force=True))
        after_second = [server.connections for server in servers]
    assert (first.count("ok"), second.count("not_modified")) == (4 * hosts, 4 * hosts)
    # A host's four sources come in one run: two connections (per_host) each pass, for
    # 200s and 304s alike, 12 in all; a few more where the pool, full, closed a host's
    # idle connection for another host's request just before the host's next one came.
    # In the claim order, or with 304s left unread, every request opened one: 24.
    opened = (sum(after_first), sum(after_second) - sum(after_first))
    assert max(opened) <= 16, (after_first, after_second)
