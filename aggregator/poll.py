"""The refresh sequence: fetch → not modified? → unchanged? → parse → store → schedule.

`poll_source` reads top to bottom as one poll of one source; `poll_pass` runs it
over many sources concurrently, parsing in worker processes so both cores work
and the event loop never blocks, and writing through one writer at a time.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from aggregator.config import Config, SourceConfig
from aggregator.fetch import Fetcher, FetchError, FetchResponse
from aggregator.model import ParsedFeed, PollRecord, SaveCounts, SourceState
from aggregator.parse import ParseError, parse_document
from aggregator.schedule import Outcome, Policy, next_poll, parse_max_age, parse_retry_after
from aggregator.store import Store, describe_error

log = logging.getLogger("aggregator.poll")

# Below this many documents a process pool costs more to start than it saves.
POOL_THRESHOLD = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SourceResult:
    """How one poll of one source ended, for summaries and logs."""

    source: str
    url: str
    status: str  # "ok", "not_modified", "unchanged", "error", "gone"
    counts: SaveCounts = field(default_factory=SaveCounts)
    error: str | None = None
    moved_to: str | None = None
    http_status: int | None = None
    duration: float = 0.0
    next_poll_at: datetime | None = None


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
    """Polls sources with one fetcher, one parser pool and one store writer."""

    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        *,
        executor: Executor | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.executor = executor
        self.clock = clock
        # SQLite takes one writer at a time; serialising here keeps the wait out of the database.
        self._write_lock = asyncio.Lock()

    def _policy(self, source: SourceConfig) -> Policy:
        settings = self.config.settings
        return Policy(
            interval=source.interval or settings.interval,
            min_interval=settings.min_interval,
            max_interval=settings.max_interval,
        )

    async def poll_source(self, state: SourceState) -> SourceResult:
        """One poll of one source, start to finish. Never raises for a source's own faults."""
        source = self.config.sources[state.name]
        location = state.url or str(state.path)
        started = time.monotonic()
        try:
            response = await self._fetch(state)
        except FetchError as error:
            return await self._failed(state, source, location, error, started)

        now = self.clock()
        outcome_headers = _header_hints(response, now)
        if response.not_modified:
            return await self._finish(
                state,
                source,
                location,
                "not_modified",
                started,
                response=response,
                hints=outcome_headers,
            )

        body_hash = hashlib.blake2b(response.body, digest_size=16).hexdigest()
        if body_hash == state.body_hash:
            # Same bytes as last time: nothing to parse, but the validators may be new
            # (a `touch`ed file on Apache changes its ETag) and must still be stored.
            return await self._finish(
                state,
                source,
                location,
                "unchanged",
                started,
                response=response,
                hints=outcome_headers,
                body_hash=body_hash,
            )

        try:
            feed = await self._parse(response, state.name)
        except ParseError as error:
            # Validators are deliberately not stored: the next poll fetches and parses in
            # full, so a fixed feed (or a fixed parser) is picked up at once.
            return await self._failed(state, source, location, error, started, response)

        return await self._finish(
            state,
            source,
            location,
            "ok",
            started,
            response=response,
            hints=outcome_headers,
            body_hash=body_hash,
            feed=feed,
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

    async def _parse(self, response: FetchResponse, name: str) -> ParsedFeed:
        # A partial of a module-level function pickles, so it can cross to a worker process.
        job = functools.partial(
            parse_document,
            response.body,
            url=response.final_url,
            content_type=response.content_type,
            source=name,
            max_entries=self.config.settings.max_entries,
        )
        if self.executor is None:
            return await asyncio.to_thread(job)
        return await asyncio.get_running_loop().run_in_executor(self.executor, job)

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
        status = "error"
        http_status = getattr(error, "status", None)
        if http_status == 410:
            status = "gone"
        retry_after = parse_retry_after(getattr(error, "retry_after", None), now)
        errors = state.error_count + 1
        when = next_poll(
            self._policy(source),
            Outcome(status=status, error_count=errors, retry_after=retry_after),
            now,
            jitter=random.uniform(-1, 1),
        )
        record = PollRecord(
            source=state.name,
            polled_at=now,
            status=status,
            next_poll_at=when,
            http_status=http_status if http_status else (response.status if response else None),
            error=str(error),
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
        )
        _log_result(result)
        return result

    async def _finish(
        self,
        state: SourceState,
        source: SourceConfig,
        location: str,
        status: str,
        started: float,
        *,
        response: FetchResponse,
        hints: Outcome,
        body_hash: str | None = None,
        feed: ParsedFeed | None = None,
    ) -> SourceResult:
        now = self.clock()
        when = next_poll(
            self._policy(source),
            Outcome(status=status, max_age=hints.max_age, retry_after=hints.retry_after),
            now,
        )
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
        )
        _log_result(result)
        return result

    async def _write(self, record: PollRecord) -> SaveCounts:
        async with self._write_lock:
            return await asyncio.to_thread(self.store.record_poll, record)

    async def poll_pass(
        self,
        states: Sequence[SourceState],
        *,
        on_result: Callable[[SourceResult], None] | None = None,
    ) -> PollSummary:
        """Poll `states` concurrently; bounded in flight so memory stays flat."""
        summary = PollSummary()
        in_flight = asyncio.Semaphore(max(2, self.config.settings.concurrency * 2))

        async def one(state: SourceState) -> None:
            async with in_flight:
                try:
                    result = await self.poll_source(state)
                except SQLAlchemyError as error:
                    # Locked, read-only, full or gone: nothing of this poll was kept, and
                    # the source is due again as soon as the database takes writes.
                    location = state.url or str(state.path)
                    message = f"{state.name}: {location}: database error: {describe_error(error)}"
                    log.error("poll source=%s failed: %s", state.name, message)
                    result = SourceResult(state.name, location, "error", error=message)
                except Exception as error:  # a bug must cost one source, never the pass
                    log.exception("source %s: unexpected failure", state.name)
                    result = SourceResult(state.name, state.url or "", "error", error=repr(error))
            summary.results.append(result)
            if on_result is not None:
                on_result(result)

        await asyncio.gather(*(one(state) for state in states))
        return summary


def _header_hints(response: FetchResponse, now: datetime) -> Outcome:
    return Outcome(
        status="ok",
        max_age=parse_max_age(response.headers.get("cache-control")),
        retry_after=None,
    )


def _log_result(result: SourceResult) -> None:
    level = logging.WARNING if result.status in ("error", "gone") else logging.INFO
    log.log(
        level,
        "poll source=%s url=%s status=%s http=%s duration=%.3fs new=%d updated=%d "
        "duplicates=%d next=%s%s",
        result.source,
        result.url,
        result.status,
        result.http_status or "-",
        result.duration,
        result.counts.new,
        result.counts.updated,
        result.counts.duplicates,
        result.next_poll_at.isoformat(timespec="seconds") if result.next_poll_at else "-",
        f" error={result.error!r}" if result.error else "",
    )


def parser_pool(jobs: int) -> Executor | None:
    """A process pool for parsing when there is enough work to pay for it."""
    if jobs < POOL_THRESHOLD:
        return None
    # forkserver: forking a process that already runs threads (uvicorn, SQLite) is unsafe.
    context = get_context("forkserver")
    context.set_forkserver_preload(["aggregator.parse"])
    return ProcessPoolExecutor(max_workers=2, mp_context=context)


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
    """One polling pass over due sources (every enabled one with `force`, or `names`)."""
    now = clock()
    states = (
        store.due_sources(now, names=names if names else None)
        if not force
        else [s for s in store.source_states() if s.enabled and s.name in config.sources]
    )
    if force and names:
        states = [s for s in states if s.name in names]
    states = [s for s in states if s.name in config.sources]
    if on_start is not None:
        on_start(len(states))
    if not states:
        return PollSummary()
    settings = config.settings
    own_pool = executor is None
    pool = executor if executor is not None else parser_pool(len(states))
    try:
        async with Fetcher(
            user_agent=settings.user_agent,
            timeout=settings.timeout.total_seconds(),
            max_bytes=settings.max_bytes,
            concurrency=settings.concurrency,
            per_host=settings.per_host,
        ) as fetcher:
            poller = Poller(config, store, fetcher, executor=pool, clock=clock)
            return await poller.poll_pass(states, on_result=on_result)
    finally:
        if own_pool and pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
