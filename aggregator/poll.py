"""The refresh sequence: fetch → not modified? → unchanged? → parse → store → schedule.

`poll_source` reads top to bottom as one poll of one claimed source; `poll_pass`
runs it over many sources concurrently, parsing in worker processes so both cores
work and the event loop never blocks, and writing through one writer at a time.
Every poll ends in one `Store.record_poll` transaction that stores what it found,
its next poll time and the release of its claim together.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from aggregator.config import Config, SourceConfig
from aggregator.fetch import Fetcher, FetchError, FetchResponse, HostHeld
from aggregator.model import PollRecord, SaveCounts, SourceState
from aggregator.owners import is_dead, new_owner, retire
from aggregator.parse import ParseError
from aggregator.prepare import PreparedFeed, exit_with, parse_and_prepare
from aggregator.schedule import (
    MAX_RETRY_AFTER,
    Outcome,
    Policy,
    host_order,
    next_poll,
    parse_max_age,
    parse_retry_after,
    publisher_hint,
)
from aggregator.store import Store, describe_error

log = logging.getLogger("aggregator.poll")

# Below this many documents a process pool costs more to start than it saves.
POOL_THRESHOLD = 8
# At most this many polls share one transaction, and at most GROUP_ENTRIES entries
# between them: a bigger group holds the write lock longer and loses more to one
# kill -9 (which loses no consistency). Grouping documents pays on SQLite: the match
# key index is keyed by hashes, so each document dirties pages all over it, and a
# commit per document wrote most of them to the WAL again (2,000 documents of 35
# entries: writer time 0.92 ms per entry one by one, 0.59 ms in groups of 64; later,
# with a 64 MB page cache, 0.36 ms in groups of 2,000 entries, 0.33 in groups of 5,000). Not
# where several pollers write at once (PostgreSQL): two groups carrying one new
# story's link conflict or deadlock, and every poll of the losing group is written
# again; there documents go alone, as the write-conflict retry expects.
GROUP_COMMIT = 200
GROUP_ENTRIES = 5000
# A poll gives up its place among those fetching and parsing once its record is queued
# for the writer, so fetching and parsing go on while a group is written (with the
# place held to the commit, 40 places were soon all waiting on the writer, and a cold
# pass ran one stage at a time). Queued records are bounded by their entries instead:
# past WRITE_BACKLOG a poll keeps its place and waits for room, which is what slows
# fetching down when the writer falls behind. About 8 KB of memory per queued entry.
WRITE_BACKLOG = 2000
# Only these answers' Retry-After speaks for the whole host (RFC 9110 10.2.3, RFC 6585 4).
RETRY_AFTER_STATUSES = frozenset({429, 503})
# No claim is shorter: a poller that dies is replaced after this long at worst.
MIN_LEASE = timedelta(minutes=10)
# Pollers sharing PostgreSQL store at the same moment entries that join the same new
# story (several sources carrying one link): both insert its key, and the second
# transaction fails on the unique index once the first commits (or the two deadlock).
# The transaction rolled back whole; written again, it finds the other's story and
# joins it. More than a few conflicts in a row is no race: the error then stands.
WRITE_ATTEMPTS = 4
# unique_violation, serialization_failure, deadlock_detected
_CONFLICT_STATES = frozenset({"23505", "40001", "40P01"})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """How one poll of one source ended, for summaries, logs and metrics."""

    source: str
    url: str
    status: str  # "ok", "not_modified", "unchanged", "error", "gone"; "skipped": not polled
    counts: SaveCounts = field(default_factory=SaveCounts)
    error: str | None = None
    moved_to: str | None = None
    http_status: int | None = None
    duration: float = 0.0
    next_poll_at: datetime | None = None
    fetch_seconds: float | None = None  # the HTTP exchange (or file read) alone
    bytes: int = 0  # body bytes after decompression
    host: str | None = None
    host_not_before: datetime | None = None  # a Retry-After now holds its whole host


@dataclass(slots=True)
class PollSummary:
    """A whole pass: how many sources ended each way, and what was stored."""

    results: list[SourceResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def counts(self) -> SaveCounts:
        total = SaveCounts()
        for result in self.results:
            total = total + result.counts
        return total

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.results if r.status in ("error", "gone")]


class Poller:
    """Polls claimed sources with one fetcher, one parser pool and one store writer.

    `owner` names this poller in the claims it takes; `rng` supplies the backoff
    jitter (seeded in tests and benchmarks); `clock` is the time, injectable so a
    simulated day takes seconds. `unreleased` holds the sources whose poll ended
    in a database error: their claims are still this poller's, and
    `release_unreleased` gives them back once the database takes writes again.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        *,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.executor = executor
        self.clock = clock
        self.owner = owner or new_owner("poll")
        self.rng = rng or random.Random()
        self.unreleased: set[str] = set()
        # SQLite takes one writer at a time: one writer task here keeps the wait out of
        # the database, and writes what queued meanwhile as a group (`_drain`).
        self._queue: deque[tuple[PollRecord, asyncio.Future[SaveCounts]]] = deque()
        self._queued_entries = 0
        self._waiting_for_room: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._group_entries = GROUP_ENTRIES if store.single_writer else 0
        # What each running poll calls once its record is queued (`poll_one`'s `on_queued`).
        self._on_queued: dict[asyncio.Task[object], Callable[[], None]] = {}

    def policy(self, source: SourceConfig) -> Policy:
        return policy_for(self.config, source)

    async def poll_source(self, state: SourceState) -> SourceResult:
        """One poll of one claimed source, start to finish. Never raises for a source's own
        faults; its result (any result) releases the claim in the same transaction."""
        source = self.config.sources.get(state.name)
        location = state.url or str(state.path)
        if source is None:
            # Removed from the configuration between the claim and now (a reload).
            await asyncio.to_thread(self.store.release_claims, self.owner, [state.name])
            return SourceResult(state.name, location, "skipped")
        started = time.monotonic()
        try:
            response = await self._fetch(state)
        except HostHeld as held:
            return await self._deferred(state, location, held)
        except FetchError as error:
            return await self._failed(state, source, location, error, started)

        if response.not_modified:
            return await self._finish(state, source, location, "not_modified", started, response)

        body_hash = hashlib.blake2b(response.body, digest_size=16).hexdigest()
        if body_hash == state.body_hash:
            # Same bytes as last time: nothing to parse, but the validators may be new
            # (a `touch`ed file on Apache changes its ETag) and must still be stored.
            return await self._finish(
                state, source, location, "unchanged", started, response, body_hash=body_hash
            )

        try:
            parsed = await self._parse(response, state.name)
        except ParseError as error:
            # Validators are deliberately not stored: the next poll fetches and parses in
            # full, so a fixed feed (or a fixed parser) is picked up at once.
            return await self._failed(state, source, location, error, started, response)

        return await self._finish(
            state, source, location, "ok", started, response, body_hash=body_hash, parsed=parsed
        )

    async def _fetch(self, state: SourceState) -> FetchResponse:
        if state.path:
            return await self.fetcher.read_file(state.name, Path(state.path))
        assert state.url is not None
        return await self.fetcher.fetch(
            state.name,
            state.url,
            state.validators,
            allow_private=self.config.sources[state.name].allow_private,
        )

    async def _parse(self, response: FetchResponse, name: str) -> PreparedFeed:
        # A partial of a module-level function pickles, so it can cross to a worker process.
        # The worker also prepares the entries (keys, hashes, fingerprints): the writer
        # is the one part of a poll that cannot run on both cores.
        job = functools.partial(
            parse_and_prepare,
            response.body,
            url=response.final_url,
            content_type=response.content_type,
            source=name,
            max_entries=self.config.settings.max_entries,
        )
        if self.executor is None:
            return await asyncio.to_thread(job)
        return await asyncio.get_running_loop().run_in_executor(self.executor, job)

    async def _deferred(self, state: SourceState, location: str, held: HostHeld) -> SourceResult:
        """Not polled after all: its host asked for a pause while it waited for its turn."""
        until = self.clock() + timedelta(seconds=held.remaining)
        await asyncio.to_thread(self.store.defer, state.name, self.owner, until)
        log.info(
            "poll source=%s url=%s deferred: %s asked for a pause, next=%s",
            state.name,
            location,
            held.host,
            until.isoformat(timespec="seconds"),
        )
        return SourceResult(state.name, location, "skipped", next_poll_at=until, host=held.host)

    async def _failed(
        self,
        state: SourceState,
        source: SourceConfig,
        location: str,
        error: FetchError | ParseError,
        started: float,
        response: FetchResponse | None = None,
    ) -> SourceResult:
        now = self.clock()
        http_status = getattr(error, "status", None)
        status = "gone" if http_status == 410 else "error"
        retry_after = None
        host_not_before = None
        if http_status in RETRY_AFTER_STATUSES:
            retry_after = parse_retry_after(getattr(error, "retry_after", None), now)
            if retry_after is not None and state.host:
                host_not_before = now + min(retry_after, MAX_RETRY_AFTER)
        when = next_poll(
            self.policy(source),
            Outcome(status=status, error_count=state.error_count + 1, retry_after=retry_after),
            now,
            jitter=self.rng.random(),
        )
        record = PollRecord(
            source=state.name,
            polled_at=now,
            status=status,
            next_poll_at=when,
            http_status=http_status if http_status else (response.status if response else None),
            error=str(error),
            host_not_before=host_not_before,
            fetched_bytes=len(response.body) if response else 0,
            duration=time.monotonic() - started,
        )
        await self._write(record)
        result = SourceResult(
            source=state.name,
            url=location,
            status=status,
            error=str(error),
            http_status=record.http_status,
            duration=time.monotonic() - started,
            next_poll_at=when,
            fetch_seconds=response.elapsed if response else None,
            bytes=len(response.body) if response else 0,
            host=state.host,
            host_not_before=host_not_before,
        )
        _log_result(result)
        if status == "gone":
            log.warning(
                "source %s: %s answered 410 Gone: polling stopped; give it a new url "
                "(or run `aggregator poll --source %s`) to start again",
                state.name,
                location,
                state.name,
            )
        if host_not_before is not None:
            log.warning(
                "host %s asked us to wait (HTTP %s, Retry-After): no source on it is polled "
                "before %s",
                state.host,
                http_status,
                host_not_before.isoformat(timespec="seconds"),
            )
        return result

    async def _finish(
        self,
        state: SourceState,
        source: SourceConfig,
        location: str,
        status: str,
        started: float,
        response: FetchResponse,
        *,
        body_hash: str | None = None,
        parsed: PreparedFeed | None = None,
    ) -> SourceResult:
        now = self.clock()
        feed = parsed.feed if parsed is not None else None
        hint = (
            publisher_hint(feed.ttl_minutes, feed.update_period_minutes)
            if feed is not None
            else publisher_hint(state.ttl_minutes, state.update_period_minutes)
        )
        headers = response.headers
        outcome = Outcome(
            status=status,
            max_age=parse_max_age(headers.get("cache-control"), headers.get("age")),
            hint=hint,
        )
        when = next_poll(self.policy(source), outcome, now)
        record = PollRecord(
            source=state.name,
            polled_at=now,
            status=status,
            next_poll_at=when,
            validators=response.validators,
            body_hash=body_hash,
            http_status=response.status or None,
            new_url=response.permanent_url,
            feed=feed,
            prepared=parsed.entries if parsed is not None else None,
            fetched_bytes=len(response.body),
            duration=time.monotonic() - started,
        )
        counts = await self._write(record)
        if response.permanent_url:
            log.warning(
                "source %s moved permanently: %s -> %s; using the new URL from now on",
                state.name,
                location,
                response.permanent_url,
            )
        result = SourceResult(
            source=state.name,
            url=location,
            status=status,
            counts=counts,
            moved_to=response.permanent_url,
            http_status=record.http_status,
            duration=time.monotonic() - started,
            next_poll_at=when,
            fetch_seconds=response.elapsed,
            bytes=len(response.body),
            host=state.host,
        )
        _log_result(result)
        return result

    async def _write(self, record: PollRecord) -> SaveCounts:
        """Store `record` in a transaction of its own or grouped with other polls (see
        `_drain`); returns once it is committed, raises what the database raised. Waits
        first while WRITE_BACKLOG entries are queued (a record bigger than that waits for
        an empty queue), then tells the poll's `on_queued`."""
        loop = asyncio.get_running_loop()
        entries = _entry_count(record)
        while self._queue and self._queued_entries + entries > WRITE_BACKLOG:
            room: asyncio.Future[None] = loop.create_future()
            self._waiting_for_room.append(room)
            await room
        future: asyncio.Future[SaveCounts] = loop.create_future()
        self._queue.append((record, future))
        self._queued_entries += entries
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        task = asyncio.current_task()
        on_queued = self._on_queued.pop(task, None) if task is not None else None
        if on_queued is not None:
            on_queued()
        return await future

    def _dequeue(self) -> tuple[PollRecord, asyncio.Future[SaveCounts]]:
        item = self._queue.popleft()
        self._queued_entries -= _entry_count(item[0])
        return item

    def _make_room(self) -> None:
        """Wake every poll waiting for room in the queue (each looks again)."""
        waiting, self._waiting_for_room = self._waiting_for_room, []
        for room in waiting:
            if not room.done():  # else its poll was cancelled meanwhile
                room.set_result(None)

    async def _drain(self) -> None:
        """Write the queue, oldest first: what queued while the last write ran goes in
        one transaction, up to GROUP_COMMIT polls and GROUP_ENTRIES entries (a document
        bigger than that alone; on a database of several writers, every document alone).
        Nothing waits to fill a group: an idle writer writes the first poll that arrives
        at once."""
        batch: list[tuple[PollRecord, asyncio.Future[SaveCounts]]] = []
        try:
            while self._queue:
                batch = [self._dequeue()]
                entries = _entry_count(batch[0][0])
                while self._queue and len(batch) < GROUP_COMMIT:
                    more = _entry_count(self._queue[0][0])
                    if entries + more > self._group_entries:
                        break
                    batch.append(self._dequeue())
                    entries += more
                self._make_room()
                await self._write_batch(batch)
                batch = []
        finally:
            # Cancelled (the pass or the daemon is stopping): nobody may wait forever.
            for _, future in [*batch, *self._queue]:
                if not future.done():
                    future.cancel()
            self._queue.clear()
            self._queued_entries = 0
            self._make_room()

    async def _write_batch(
        self, batch: list[tuple[PollRecord, asyncio.Future[SaveCounts]]]
    ) -> None:
        if len(batch) > 1:
            records = [record for record, _ in batch]
            try:
                counts = await asyncio.to_thread(self.store.record_polls, records)
            except Exception as error:
                # Written one by one below, where each poll's own error is logged.
                log.info(
                    "a group of %d polls was not written (%s); writing them one by one",
                    len(records),
                    describe_error(error),
                )
            else:
                for (_, future), one in zip(batch, counts, strict=True):
                    _settle(future, counts=one)
                return
        # One poll alone (retried when a concurrent poll's write got in its way), or a
        # group the database refused: one poll it refuses must not fail the others, and
        # each failure must name its own source.
        for record, future in batch:
            try:
                one = await asyncio.to_thread(record_poll, self.store, record)
            except Exception as error:
                _settle(future, error=error)
            else:
                _settle(future, counts=one)

    async def poll_one(
        self, state: SourceState, *, on_queued: Callable[[], None] | None = None
    ) -> SourceResult:
        """`poll_source`, where a bug costs this one source (logged, its claim released).

        `on_queued` is called once the poll's record waits for the writer (not at all
        for a poll that writes nothing): from then on the poll fetches and parses no
        more, so whoever bounds the polls in flight may start another."""
        task = asyncio.current_task()
        if on_queued is not None and task is not None:
            self._on_queued[task] = on_queued
        try:
            return await self._poll_one(state)
        finally:
            if task is not None:
                self._on_queued.pop(task, None)

    async def _poll_one(self, state: SourceState) -> SourceResult:
        try:
            return await self.poll_source(state)
        except SQLAlchemyError as error:
            # Locked, read-only, full or gone: nothing of this poll was kept, and the
            # claim could not be given back either. It stays this poller's until
            # `release_unreleased` succeeds (the daemon tries before every claim), so
            # the source is due again as soon as the database takes writes.
            self.unreleased.add(state.name)
            location = state.url or str(state.path)
            message = f"{state.name}: {location}: database error: {describe_error(error)}"
            log.error("poll source=%s failed: %s", state.name, message)
            return SourceResult(state.name, location, "error", error=message)
        except Exception as error:  # a bug must cost one source, never the pass
            log.exception("source %s: unexpected failure", state.name)
            try:
                await asyncio.to_thread(self.store.release_claims, self.owner, [state.name])
            except Exception:
                self.unreleased.add(state.name)
            return SourceResult(state.name, state.url or "", "error", error=repr(error))

    async def release_unreleased(self) -> int:
        """Give back the claims that polls ending in a database error kept; raises the
        database's error if it still takes no writes (they are tried again next time)."""
        names = set(self.unreleased)
        if not names:
            return 0
        released = await asyncio.to_thread(self.store.release_claims, self.owner, names)
        self.unreleased -= names
        log.info("gave back %d claims kept by polls the database failed", len(names))
        return released

    async def poll_pass(
        self,
        states: Sequence[SourceState],
        *,
        on_result: Callable[[SourceResult], None] | None = None,
    ) -> PollSummary:
        """Poll `states` concurrently; bounded in flight so memory stays flat: at most
        `places` polls fetch and parse at once, and what waits for the writer is bounded
        by WRITE_BACKLOG. Taken in `host_order`, so a host's connections serve several of
        its sources."""
        summary = PollSummary()
        places = asyncio.Semaphore(fetch_places(self.config))

        async def one(state: SourceState) -> None:
            await places.acquire()
            held = True

            def give_back() -> None:
                nonlocal held
                if held:
                    held = False
                    places.release()

            try:
                result = await self.poll_one(state, on_queued=give_back)
            finally:
                give_back()
            summary.results.append(result)
            if on_result is not None:
                on_result(result)

        settings = self.config.settings
        ordered = host_order(
            states,
            lambda state: state.host,
            hosts_at_once=max(1, settings.concurrency // settings.per_host),
            run=settings.concurrency,
        )
        await asyncio.gather(*(one(state) for state in ordered))
        return summary


def fetch_places(config: Config) -> int:
    """How many polls may fetch and parse at once: twice the concurrency, so that a
    document is being parsed while the next one downloads."""
    return max(2, config.settings.concurrency * 2)


def _entry_count(record: PollRecord) -> int:
    return len(record.feed.entries) if record.feed is not None else 0


def _settle(
    future: asyncio.Future[SaveCounts],
    *,
    counts: SaveCounts | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # its poll was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert counts is not None
        future.set_result(counts)


def policy_for(config: Config, source: SourceConfig) -> Policy:
    settings = config.settings
    return Policy(
        interval=source.interval or settings.interval,
        min_interval=settings.min_interval,
        max_interval=settings.max_interval,
    )


def lease_for(config: Config, batch: int) -> timedelta:
    """How long a claim of `batch` sources must last: long enough for each of them to
    wait its turn for a connection and then use its whole timeout, with room to spare."""
    settings = config.settings
    rounds = -(-max(batch, 1) // max(1, settings.concurrency))
    return max(MIN_LEASE, settings.timeout * (rounds + 2))


def record_poll(store: Store, record: PollRecord) -> SaveCounts:
    """`store.record_poll`, written again when a concurrent poll's write got in its way
    (see WRITE_ATTEMPTS)."""
    for attempt in range(1, WRITE_ATTEMPTS):
        try:
            return store.record_poll(record)
        except DBAPIError as error:
            if not _conflict(error):
                raise
            log.info(
                "poll of %s met a concurrent poll's write (attempt %d: %s); writing it again",
                record.source,
                attempt,
                describe_error(error),
            )
    return store.record_poll(record)


def _conflict(error: DBAPIError) -> bool:
    """A PostgreSQL error another transaction caused, which running this one again cures."""
    return getattr(error.orig, "sqlstate", None) in _CONFLICT_STATES


def release_dead_claims(store: Store, now: datetime) -> int:
    """Take back the claims of pollers known to have died (`owners.is_dead`: killed,
    crashed, or a pass in this process that could not release them), so their
    sources are due at once instead of when the lease ends; returns how many."""
    released = 0
    for owner in sorted(store.claim_holders(now)):
        if is_dead(owner):
            count = store.release_claims(owner)
            released += count
            log.warning(
                "took back %d claims of poller %s, which is no longer running", count, owner
            )
    return released


def new_fetcher(config: Config) -> Fetcher:
    settings = config.settings
    return Fetcher(
        user_agent=settings.user_agent,
        timeout=settings.timeout.total_seconds(),
        max_bytes=settings.max_bytes,
        concurrency=settings.concurrency,
        per_host=settings.per_host,
    )


def _log_result(result: SourceResult) -> None:
    """One line per poll, key=value so journald readers can grep and parse it."""
    level = logging.WARNING if result.status in ("error", "gone") else logging.INFO
    log.log(
        level,
        "poll source=%s url=%s status=%s http=%s duration=%.3fs bytes=%d new=%d updated=%d "
        "duplicates=%d next=%s%s%s",
        result.source,
        result.url,
        result.status,
        result.http_status or "-",
        result.duration,
        result.bytes,
        result.counts.new,
        result.counts.updated,
        result.counts.duplicates,
        result.next_poll_at.isoformat(timespec="seconds") if result.next_poll_at else "-",
        f" moved_to={result.moved_to}" if result.moved_to else "",
        f" error={result.error!r}" if result.error else "",
    )


def parser_pool(jobs: int) -> Executor | None:
    """A process pool for parsing when there is enough work to pay for it."""
    if jobs < POOL_THRESHOLD:
        return None
    # forkserver: forking a process that already runs threads (uvicorn, SQLite) is unsafe.
    context = get_context("forkserver")
    context.set_forkserver_preload(["aggregator.prepare"])
    return ProcessPoolExecutor(
        max_workers=2, mp_context=context, initializer=exit_with, initargs=(os.getpid(),)
    )


async def run_pass(
    config: Config,
    store: Store,
    *,
    names: Collection[str] | None = None,
    force: bool = False,
    clock: Callable[[], datetime] = utcnow,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[SourceResult], None] | None = None,
    executor: Executor | None = None,
) -> PollSummary:
    """One polling pass over due sources (every enabled one with `force`, or `names`).

    The sources are claimed first, as the daemon claims them, so a pass run beside a
    daemon on the same database never polls a source the daemon is polling.
    """
    now = clock()
    # A poller killed earlier (kill -9, a crash, the machine's own failure) left its
    # claims behind; once it is known dead there is nothing to wait for.
    release_dead_claims(store, now)
    owner = new_owner("cli")
    try:
        lease = lease_for(config, len(config.sources))
        if force or names:
            wanted = [name for name in config.sources if not names or name in names]
            states = store.claim_named(wanted, now, owner=owner, lease=lease)
        else:
            limit = max(1, len(config.sources))
            states = store.claim_due(now, owner=owner, lease=lease, limit=limit)
        states = [s for s in states if s.name in config.sources]
        if on_start is not None:
            on_start(len(states))
        if not states:
            return PollSummary()
        own_pool = executor is None
        pool = executor if executor is not None else parser_pool(len(states))
        try:
            async with new_fetcher(config) as fetcher:
                poller = Poller(config, store, fetcher, executor=pool, clock=clock, owner=owner)
                return await poller.poll_pass(states, on_result=on_result)
        finally:
            try:
                store.release_claims(owner)
            except SQLAlchemyError as error:
                # The polls already failed for the same reason and say so; the next
                # pass takes these claims back (this owner is retired below).
                log.error("cannot give back this pass's claims: %s", describe_error(error))
            if own_pool and pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        retire(owner)
