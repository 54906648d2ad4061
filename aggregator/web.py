"""The HTTP service over Starlette: output feeds, the OPML list, health, metrics, status.

Rendered feeds are cached per (feed, format, query, limit) together with their gzip
form, and keyed on the store's data version. The version is watched in-process
(`DataVersion`): the daemon's poller marks it stale whenever it stores a poll, and
otherwise it is re-read at most once a second (for writers in other processes), so
a reader's poll of an unchanged feed costs no database access at all — a dict
lookup and, usually, a 304.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator import __version__
from aggregator.charts import DAYS, fill
from aggregator.config import Config
from aggregator.filters import Query, QueryError, parse_query
from aggregator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from aggregator.metrics import Metrics
from aggregator.model import DayActivity, PollLog, SourceState
from aggregator.outputs import OutputFeed, output_feeds
from aggregator.pages import feed_page, missing_page, source_page, status_page
from aggregator.publish import FORMATS, render_feed, review_for
from aggregator.render import FeedContext, render_opml
from aggregator.status import feed_page_view, overview, sort_rows, source_page_view
from aggregator.store import Store, describe_error

log = logging.getLogger("aggregator.web")

MAX_LIMIT = 500
MAX_QUERY_LENGTH = 500
CACHE_ENTRIES = 512
# Readers may reuse a response this long without asking; conditional requests stay cheap after.
CACHE_CONTROL = "public, max-age=60"
# Writers in other processes (`aggregator poll`, pollers of `run --role poller` on
# PostgreSQL) are noticed within this long; the daemon's own poller is noticed at once.
# Why a re-read and not LISTEN/NOTIFY: the version is one primary-key row, so a web
# process pays one index lookup a second (under a millisecond) whatever its request
# rate, and the check works the same on SQLite. NOTIFY would wake readers sooner, but
# PostgreSQL serialises the commits of every transaction that sends one on a global
# lock of its notification queue, and each poll that stores entries would send one:
# the pollers' write rate would pay for a second of freshness no feed reader sees.
VERSION_RECHECK = 1.0
# The pages for people load nothing from elsewhere and run no script; this says so to
# the browser, so an injected <script> or <img> from a feed could not run or load either.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Rows on a source's page.
PAGE_POLLS = 30
PAGE_ENTRIES = 50
# Level 6: nearly level 9's size at a fraction of the CPU, paid once per render.
GZIP_LEVEL = 6
GZIP_MIN_SIZE = 500


class DataVersion:
    """The store's data version, read at most every `recheck` seconds unless marked stale."""

    def __init__(
        self,
        store: Store,
        *,
        recheck: float = VERSION_RECHECK,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._recheck = recheck
        self._monotonic = monotonic
        self._value: int | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def mark_stale(self) -> None:
        """Something was written: the next `current` reads the version again."""
        self._value = None

    def fresh(self) -> int | None:
        """The known version if it may still be trusted, without touching the database."""
        value = self._value
        if value is None or self._monotonic() - self._read_at >= self._recheck:
            return None
        return value

    def current(self) -> int:
        """The version, read from the database only when stale (blocking: call in a thread)."""
        value = self.fresh()
        if value is not None:
            return value
        with self._lock:
            value = self.fresh()
            if value is None:
                read_at = self._monotonic()
                value = self._store.data_version()
                self._value, self._read_at = value, read_at
            return value


@dataclass(slots=True)
class _Cached:
    version: int
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str  # of the identity body; the gzip form's is etag_gzip
    last_modified: datetime  # when this output last changed, as far as this process saw

    @property
    def etag_gzip(self) -> str:
        return self.etag[:-1] + '-gz"'


@dataclass(slots=True)
class WebState:
    """What the web app serves from; `reconfigure` swaps the configuration on reload."""

    config: Config
    store: Store
    scheduler_alive: Callable[[], bool] = lambda: True
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    metrics: Metrics = field(default_factory=Metrics)
    versions: DataVersion | None = None
    feeds: dict[str, OutputFeed] = field(default_factory=dict)
    cache: OrderedDict[tuple[str, str, str, int | None], _Cached] = field(
        default_factory=OrderedDict
    )
    opml: _Cached | None = None

    def __post_init__(self) -> None:
        self.feeds = output_feeds(self.config)
        if self.versions is None:
            self.versions = DataVersion(self.store)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.feeds = output_feeds(config)
        self.cache.clear()
        self.opml = None

    def data_changed(self) -> None:
        assert self.versions is not None
        self.versions.mark_stale()


def create_app(state: WebState, *, outputs: bool = True) -> Starlette:
    """The routes of `run`; with `outputs=False` (the poller role) only /healthz and
    /metrics, which a load balancer and Prometheus need from every process."""
    metrics = state.metrics

    async def feed(request: Request) -> Response:
        name = request.path_params["name"]
        fmt = request.path_params["fmt"]
        output = state.feeds.get(name)
        if output is None or fmt not in FORMATS:
            return PlainTextResponse(f"no output feed named {name!r}\n", status_code=404)
        try:
            extra, limit = _query_params(request)
        except ValueError as error:
            return PlainTextResponse(f"{error}\n", status_code=400)
        key = (output.name, fmt, extra.text if extra else "", limit)
        assert state.versions is not None
        cached = state.cache.get(key)
        try:
            version = state.versions.fresh()
            if version is None:
                version = await run_in_threadpool(state.versions.current)
            if cached is not None and cached.version == version:
                state.cache.move_to_end(key)
                metrics.render_cache.labels("hit").inc()
            else:
                metrics.render_cache.labels("miss").inc()
                cached = await run_in_threadpool(_render, state, key, output, version, extra, limit)
        except SQLAlchemyError as error:
            if cached is None:
                log.error(
                    "cannot render %s.%s, database unavailable: %s",
                    name,
                    fmt,
                    describe_error(error),
                )
                return PlainTextResponse(
                    "database unavailable, and this feed is not in the cache; retry later\n",
                    status_code=503,
                    headers={"Retry-After": "30"},
                )
            # The database is away: readers keep getting the last rendering until it is back.
        return _answer(request, cached, metrics)

    async def opml(request: Request) -> Response:
        if state.opml is None:
            ctx = FeedContext(
                base_url=state.config.settings.base_url,
                now=state.clock(),
                generator=f"aggregator {__version__}",
            )
            body = render_opml(list(state.feeds.values()), ctx)
            state.opml = _cached(0, body, "text/x-opml; charset=utf-8", None, state.clock())
        return _answer(request, state.opml, metrics)

    async def healthz(request: Request) -> Response:
        checks: dict[str, str] = {}
        healthy = True
        try:
            await asyncio.wait_for(run_in_threadpool(state.store.ping), timeout=10)
            checks["database"] = "ok"
        except Exception as error:  # any driver error (or none in time) means "not answering"
            checks["database"] = f"error: {type(error).__name__}: {describe_error(error)}"
            healthy = False
        if state.scheduler_alive():
            checks["scheduler"] = "ok"
        else:
            checks["scheduler"] = "stalled"
            healthy = False
        body = {"status": "ok" if healthy else "unavailable", "version": __version__, **checks}
        return JSONResponse(
            body, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"}
        )

    async def metrics_route(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def status(request: Request) -> Response:
        sort = request.query_params.get("sort", "name")
        descending = request.query_params.get("order") == "desc"
        now = state.clock()
        since = now.date() - timedelta(days=DAYS - 1)

        def load() -> tuple[list[SourceState], dict[str, list[DayActivity]]]:
            # Two queries whatever the number of sources: states, and every sparkline.
            return state.store.source_states(), state.store.activity(since)

        try:
            states, activity = await run_in_threadpool(load)
        except SQLAlchemyError as error:
            return unavailable("the status page", error)
        config = state.config
        view = overview(
            states,
            {name: source.title for name, source in config.sources.items()},
            state.feeds,
            base_url=config.settings.base_url,
            now=now,
        )
        rows = sort_rows(view.sources, sort, descending)
        page = status_page(view, rows, activity=activity, sort=sort, descending=descending)
        return HTMLResponse(page, headers=PAGE_HEADERS)

    def unavailable(what: str, error: SQLAlchemyError) -> Response:
        cause = describe_error(error)
        log.error("cannot show %s, database unavailable: %s", what, cause)
        return PlainTextResponse(
            f"database unavailable: {cause}\nretry later; /healthz says when it is back\n",
            status_code=503,
            headers={"Retry-After": "30", "Cache-Control": "no-store"},
        )

    def opml_link() -> str:
        return f"{state.config.settings.base_url}/feeds.opml"

    def missing(message: str) -> Response:
        page = missing_page(message, root="../", opml_url=opml_link())
        return HTMLResponse(page, status_code=404, headers=PAGE_HEADERS)

    async def source(request: Request) -> Response:
        name = request.path_params["name"]
        config = state.config
        configured = config.sources.get(name)
        if configured is None:
            return missing(f"There is no source named {name!r} in the configuration.")
        now = state.clock()
        since = now.date() - timedelta(days=DAYS - 1)

        def load() -> tuple[SourceState | None, list[PollLog], list[DayActivity], list[Any]]:
            store = state.store
            return (
                store.source_state(name),
                store.poll_history(name, PAGE_POLLS),
                store.activity(since, names=[name]).get(name, []),
                store.source_entries(name, PAGE_ENTRIES),
            )

        try:
            found, polls, days, entries = await run_in_threadpool(load)
        except SQLAlchemyError as error:
            return unavailable(f"the page of source {name}", error)
        current = found or SourceState(
            name=name,
            url=configured.url,
            path=str(configured.path) if configured.path else None,
            enabled=configured.enabled,
        )
        view = source_page_view(
            current,
            configured.title,
            url=current.url,
            path=current.path,
            categories=configured.categories,
            interval=configured.interval,
            default_interval=config.settings.interval,
            feeds=state.feeds,
            polls=polls,
            entries=entries,
            days=fill(days, now.date()),
            now=now,
        )
        page = source_page(view, now=now, opml_url=opml_link())
        return HTMLResponse(page, headers=PAGE_HEADERS)

    async def output(request: Request) -> Response:
        name = request.path_params["name"]
        feed = state.feeds.get(name)
        if feed is None:
            return missing(f"There is no output feed named {name!r}.")
        now = state.clock()
        try:
            reviewed = await run_in_threadpool(review_for, state.store, feed, now)
        except SQLAlchemyError as error:
            return unavailable(f"the page of output feed {name}", error)
        view = feed_page_view(feed, reviewed, base_url=state.config.settings.base_url)
        page = feed_page(view, now=now, opml_url=opml_link())
        return HTMLResponse(page, headers=PAGE_HEADERS)

    # Feeds and the OPML list carry their own cached gzip form; only the pages made per
    # request (status, metrics) are compressed on the way out.
    compress = [Middleware(GZipMiddleware, minimum_size=GZIP_MIN_SIZE, compresslevel=GZIP_LEVEL)]
    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics_route, middleware=compress),
    ]
    if outputs:
        routes += [
            Route("/", status, middleware=compress),
            Route("/sources/{name:str}", source, middleware=compress),
            Route("/outputs/{name:str}", output, middleware=compress),
            Route("/feeds/{name:str}.{fmt:str}", feed),
            Route("/feeds.opml", opml),
        ]
    return Starlette(routes=routes)


def _query_params(request: Request) -> tuple[Query | None, int | None]:
    """The `q` and `limit` parameters, validated; ValueError says what is wrong."""
    extra: Query | None = None
    q = request.query_params.get("q")
    if q is not None:
        if len(q) > MAX_QUERY_LENGTH:
            raise ValueError(f"bad query: longer than {MAX_QUERY_LENGTH} characters")
        try:
            extra = parse_query(q, untrusted=True)
        except QueryError as error:
            raise ValueError(f"bad query: {error}") from error
    limit: int | None = None
    raw = request.query_params.get("limit")
    if raw is not None:
        # ASCII and short first: "²" passes isdigit() but not int(), nor 5,000 digits.
        if (
            not (raw.isascii() and raw.isdigit() and len(raw) <= 3)
            or not 1 <= int(raw) <= MAX_LIMIT
        ):
            raise ValueError(f"bad limit: expected a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw)
    return extra, limit


def _render(
    state: WebState,
    key: tuple[str, str, str, int | None],
    output: OutputFeed,
    version: int,
    extra: Query | None,
    limit: int | None,
) -> _Cached:
    started = time.perf_counter()
    rendered = render_feed(
        state.store,
        output,
        key[1],
        base_url=state.config.settings.base_url,
        now=state.clock(),
        extra=extra,
        limit=limit,
    )
    elapsed = time.perf_counter() - started
    state.metrics.renders.inc()
    state.metrics.render_seconds.observe(elapsed)
    previous = state.cache.get(key)
    cached = _cached(version, rendered.body, rendered.media_type, previous, state.clock())
    state.cache[key] = cached
    state.cache.move_to_end(key)
    while len(state.cache) > CACHE_ENTRIES:
        state.cache.popitem(last=False)
    log.debug("rendered %s.%s in %.1f ms", output.name, key[1], elapsed * 1e3)
    return cached


def _cached(
    version: int, body: bytes, media_type: str, previous: _Cached | None, now: datetime
) -> _Cached:
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    if previous is not None and previous.etag == etag:
        # Same bytes under a newer data version: readers keep their validators.
        return _Cached(
            version, previous.body, previous.gzipped, media_type, etag, previous.last_modified
        )
    # Last-Modified is when this process first served these bytes (to the second, and
    # always later than the bytes it replaces), not the newest story's date: an entry
    # corrected in place changes the feed without a newer date, and a reader asking
    # If-Modified-Since must then get the new body.
    changed = now.replace(microsecond=0)
    if previous is not None and changed <= previous.last_modified:
        changed = previous.last_modified + timedelta(seconds=1)
    gzipped = (
        gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        if len(body) >= GZIP_MIN_SIZE
        else None
    )
    return _Cached(version, body, gzipped, media_type, etag, changed)


def _answer(request: Request, cached: _Cached, metrics: Metrics) -> Response:
    use_gzip = cached.gzipped is not None and _accepts_gzip(request)
    headers = {
        "ETag": cached.etag_gzip if use_gzip else cached.etag,
        "Last-Modified": format_datetime(cached.last_modified, usegmt=True),
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request, cached):
        metrics.responses_304.inc()
        return Response(status_code=304, headers=headers)
    if use_gzip:
        assert cached.gzipped is not None
        headers["Content-Encoding"] = "gzip"
        return Response(cached.gzipped, media_type=cached.media_type, headers=headers)
    return Response(cached.body, media_type=cached.media_type, headers=headers)


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            quality = params.strip().lower()
            return not (quality.startswith("q=") and _is_zero(quality[2:]))
    return False


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0
    except ValueError:
        return False


def _not_modified(request: Request, cached: _Cached) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2), and
        # compares weakly: either encoding's tag names the same content.
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or cached.etag in tags or cached.etag_gzip in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        return False
    return cached.last_modified <= when
