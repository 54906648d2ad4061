"""The HTTP service: output feeds, the OPML list and health, over Starlette.

Rendered feeds are cached by (feed, format, query, limit) and keyed on the
store's data version, so a reader's poll of an unchanged feed costs one small
query and no rendering; conditional requests are answered 304 from the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from aggregator import __version__
from aggregator.config import Config
from aggregator.filters import Query, QueryError, parse_query
from aggregator.outputs import OutputFeed, output_feeds
from aggregator.publish import FORMATS, Rendered, render_feed
from aggregator.render import FeedContext, render_opml
from aggregator.store import Store

log = logging.getLogger("aggregator.web")

MAX_LIMIT = 500
MAX_QUERY_LENGTH = 500
CACHE_ENTRIES = 512
# Readers may reuse a response this long without asking; conditional requests stay cheap after.
CACHE_CONTROL = "public, max-age=60"


# How long a data version read from the database stands: a cached feed is then served
# with no query at all, and a story stored by any process shows within this time.
VERSION_TTL = 1.0
# Compression level of the gzip copy kept beside a cached feed (made once, sent many times).
GZIP_LEVEL = 6


@dataclass(slots=True)
class _Cached:
    version: int
    rendered: Rendered
    etag: str
    gzipped: bytes | None = None  # made on the first request that accepts gzip


@dataclass(slots=True)
class WebState:
    """What the web app serves from; `reconfigure` swaps the configuration on reload."""

    config: Config
    store: Store
    scheduler_alive: Callable[[], bool] = lambda: True
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    feeds: dict[str, OutputFeed] = field(default_factory=dict)
    cache: OrderedDict[tuple[str, str, str, int | None], _Cached] = field(
        default_factory=OrderedDict
    )
    version: int = -1
    version_read_at: float = float("-inf")

    def __post_init__(self) -> None:
        self.feeds = output_feeds(self.config)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.feeds = output_feeds(config)
        self.cache.clear()

    def data_version(self) -> int:
        """The store's data version, read again once VERSION_TTL has passed (blocking)."""
        now = time.monotonic()
        if now - self.version_read_at >= VERSION_TTL:
            self.version = self.store.data_version()
            self.version_read_at = now
        return self.version

    def fresh(self, key: tuple[str, str, str, int | None]) -> _Cached | None:
        """The cached rendering for `key` if it is current; never touches the database."""
        if time.monotonic() - self.version_read_at >= VERSION_TTL:
            return None
        cached = self.cache.get(key)
        if cached is None or cached.version != self.version:
            return None
        self.cache.move_to_end(key)
        return cached


def create_app(state: WebState) -> Starlette:
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
        # A hit is answered on the event loop; only a render or a version read needs a thread.
        cached = state.fresh(_cache_key(output, fmt, extra, limit))
        if cached is None:
            cached = await run_in_threadpool(_rendered, state, output, fmt, extra, limit)
        headers = {"ETag": cached.etag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept-Encoding"}
        if cached.rendered.last_modified is not None:
            headers["Last-Modified"] = format_datetime(cached.rendered.last_modified, usegmt=True)
        if _not_modified(request, cached):
            return Response(status_code=304, headers=headers)
        body = cached.rendered.body
        if "gzip" in request.headers.get("accept-encoding", "") and len(body) >= 500:
            # Compressed once per rendering, not per request (GZipMiddleware leaves a
            # response that already has a Content-Encoding alone).
            if cached.gzipped is None:
                cached.gzipped = gzip.compress(body, GZIP_LEVEL, mtime=0)
            body = cached.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=cached.rendered.media_type, headers=headers)

    async def opml(request: Request) -> Response:
        ctx = FeedContext(
            base_url=state.config.settings.base_url,
            now=state.clock(),
            generator=f"aggregator {__version__}",
        )
        body = render_opml(list(state.feeds.values()), ctx)
        return Response(body, media_type="text/x-opml; charset=utf-8")

    async def healthz(request: Request) -> Response:
        checks: dict[str, str] = {}
        healthy = True
        try:
            await run_in_threadpool(state.store.ping)
            checks["database"] = "ok"
        except Exception as error:  # any driver error means "not answering"
            checks["database"] = f"error: {type(error).__name__}: {error}"
            healthy = False
        if state.scheduler_alive():
            checks["scheduler"] = "ok"
        else:
            checks["scheduler"] = "stalled"
            healthy = False
        body = {"status": "ok" if healthy else "unavailable", "version": __version__, **checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    routes = [
        Route("/feeds/{name:str}.{fmt:str}", feed),
        Route("/feeds.opml", opml),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes, middleware=[Middleware(GZipMiddleware, minimum_size=500)])


def _query_params(request: Request) -> tuple[Query | None, int | None]:
    """The `q` and `limit` parameters, validated; ValueError says what is wrong."""
    extra: Query | None = None
    q = request.query_params.get("q")
    if q is not None:
        if len(q) > MAX_QUERY_LENGTH:
            raise ValueError(f"bad query: longer than {MAX_QUERY_LENGTH} characters")
        try:
            extra = parse_query(q)
        except QueryError as error:
            raise ValueError(f"bad query: {error}") from error
    limit: int | None = None
    raw = request.query_params.get("limit")
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ValueError(f"bad limit: expected a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw)
    return extra, limit


def _cache_key(
    output: OutputFeed, fmt: str, extra: Query | None, limit: int | None
) -> tuple[str, str, str, int | None]:
    return (output.name, fmt, extra.text if extra else "", limit)


def _rendered(
    state: WebState, output: OutputFeed, fmt: str, extra: Query | None, limit: int | None
) -> _Cached:
    version = state.data_version()
    key = _cache_key(output, fmt, extra, limit)
    cached = state.cache.get(key)
    if cached is not None and cached.version == version:
        state.cache.move_to_end(key)
        return cached
    started = time.perf_counter()
    rendered = render_feed(
        state.store,
        output,
        fmt,
        base_url=state.config.settings.base_url,
        now=state.clock(),
        extra=extra,
        limit=limit,
    )
    etag = '"' + hashlib.blake2b(rendered.body, digest_size=12).hexdigest() + '"'
    cached = _Cached(version, rendered, etag)
    state.cache[key] = cached
    if len(state.cache) > CACHE_ENTRIES:
        state.cache.popitem(last=False)
    log.debug("rendered %s.%s in %.1f ms", output.name, fmt, (time.perf_counter() - started) * 1e3)
    return cached


def _not_modified(request: Request, cached: _Cached) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        # If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.2.2).
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or cached.etag in tags
    since = request.headers.get("if-modified-since")
    modified = cached.rendered.last_modified
    if since is None or modified is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        return False
    return modified.replace(microsecond=0) <= when
