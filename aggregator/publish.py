"""Output feeds from the store: select, render, and write static files atomically.

A thin shell: the store supplies candidate stories page by page (newest first),
`outputs.select` decides, `render` formats. Used by `build`, the web server and
the daemon's `output_dir` writer alike, so all three publish the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator import __version__
from aggregator.atomicfile import write_atomic
from aggregator.filters import Query
from aggregator.model import Story
from aggregator.outputs import OutputFeed, Verdict, review, select
from aggregator.render import RENDERERS, FeedContext, render_opml
from aggregator.store import Store

# Candidate stories fetched per query while a filtered feed fills up.
PAGE = 200
# A filter that admits almost nothing must not scan the whole store on every request.
MAX_SCAN = 5000
FORMATS = ("atom", "rss", "json")


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    media_type: str
    last_modified: datetime | None


def candidates(store: Store, feed: OutputFeed, now: datetime) -> Iterator[Story]:
    """Stories from the feed's sources, newest first, fetched a page at a time."""
    since = now - feed.max_age if feed.max_age else None
    offset = 0
    while offset < MAX_SCAN:
        page = store.stories(sources=feed.sources, since=since, limit=PAGE, offset=offset)
        yield from page
        if len(page) < PAGE:
            return
        offset += PAGE


def stories_for(
    store: Store,
    feed: OutputFeed,
    now: datetime,
    *,
    extra: Query | None = None,
    limit: int | None = None,
) -> list[Story]:
    return select(feed, candidates(store, feed, now), now=now, extra=extra, limit=limit)


def review_for(
    store: Store, feed: OutputFeed, now: datetime, *, limit: int | None = None
) -> list[tuple[Story, Verdict]]:
    """What `stories_for` would publish, with every candidate passed over on the way."""
    return review(feed, candidates(store, feed, now), now=now, limit=limit)


def render_feed(
    store: Store,
    feed: OutputFeed,
    fmt: str,
    *,
    base_url: str,
    now: datetime,
    extra: Query | None = None,
    limit: int | None = None,
) -> Rendered:
    renderer, media_type = RENDERERS[fmt]
    stories = stories_for(store, feed, now, extra=extra, limit=limit)
    ctx = FeedContext(base_url=base_url, now=now, generator=f"aggregator {__version__}")
    newest = max((s.sort_time for s in stories), default=None)
    return Rendered(renderer(feed, stories, ctx), media_type, newest)


def build_all(
    store: Store,
    feeds: dict[str, OutputFeed],
    out_dir: Path,
    *,
    base_url: str,
    now: datetime,
) -> list[Path]:
    """Write every output feed in every format plus feeds.opml; returns the files changed.

    Files whose content is unchanged are left alone, so their mtimes (and nginx's
    Last-Modified) move only when the feed does.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, feed in feeds.items():
        stories = stories_for(store, feed, now)
        ctx = FeedContext(base_url=base_url, now=now, generator=f"aggregator {__version__}")
        for fmt in FORMATS:
            renderer, _ = RENDERERS[fmt]
            target = out_dir / f"{name}.{fmt}"
            if write_atomic(target, renderer(feed, stories, ctx)):
                changed.append(target)
    opml = render_opml(
        list(feeds.values()),
        FeedContext(base_url=base_url, now=now, generator=f"aggregator {__version__}"),
    )
    target = out_dir / "feeds.opml"
    if write_atomic(target, opml):
        changed.append(target)
    return changed
