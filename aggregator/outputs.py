"""Output feeds: which feeds exist, and which stories each one publishes.

Pure: takes the configuration and stories, returns definitions and selections.
The store supplies candidate stories newest first; `select` applies the feed's
filters, age and limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator.filters import Query, matches_any_copy, parse_query
from aggregator.model import Story

if TYPE_CHECKING:
    # Only an annotation here: selection works (and is tested) without loading config.
    from aggregator.config import Config

DEFAULT_LIMIT = 50
ALL_FEED = "all"


@dataclass(frozen=True, slots=True)
class OutputFeed:
    """One output feed, whether configured or implied by a category."""

    name: str
    title: str
    sources: frozenset[str]  # candidate sources, already resolved from categories
    include: tuple[Query, ...] = ()
    exclude: tuple[Query, ...] = ()
    limit: int = DEFAULT_LIMIT
    max_age: timedelta | None = None
    description: str = ""


def output_feeds(config: Config) -> dict[str, OutputFeed]:
    """Every output feed: `all`, one per category, then `[feeds.NAME]` overriding by name."""
    enabled = {name: src for name, src in config.sources.items()}
    feeds: dict[str, OutputFeed] = {
        ALL_FEED: OutputFeed(
            name=ALL_FEED,
            title="All sources",
            sources=frozenset(enabled),
            description="Every story from every source",
        )
    }
    categories: dict[str, set[str]] = {}
    for name, source in enabled.items():
        for category in source.categories:
            categories.setdefault(category, set()).add(name)
    for category in sorted(categories):
        feeds[category] = OutputFeed(
            name=category,
            title=category.replace("-", " ").replace("_", " ").title(),
            sources=frozenset(categories[category]),
            description=f"Stories from the {category} category",
        )
    for name, fc in config.feeds.items():
        chosen: set[str] = set(fc.sources)
        for category in fc.categories:
            chosen |= categories.get(category, set())
        if not fc.sources and not fc.categories:
            chosen = set(enabled)
        feeds[name] = OutputFeed(
            name=name,
            title=fc.title or name,
            sources=frozenset(chosen),
            include=tuple(parse_query(q) for q in fc.include),
            exclude=tuple(parse_query(q) for q in fc.exclude),
            limit=fc.limit,
            max_age=fc.max_age,
            description=fc.description or "",
        )
    return feeds


def admits(feed: OutputFeed, story: Story, extra: Query | None = None) -> bool:
    """Whether `feed` publishes `story`: a candidate source carried it, an include query
    (if any) matches one of its copies, and no exclude query matches any copy."""
    if not any(copy.source in feed.sources for copy in story.copies):
        return False
    if feed.include and not any(matches_any_copy(q, story) for q in feed.include):
        return False
    if any(matches_any_copy(q, story) for q in feed.exclude):
        return False
    return extra is None or matches_any_copy(extra, story)


def select(
    feed: OutputFeed,
    candidates: Iterable[Story],
    *,
    now: datetime,
    extra: Query | None = None,
    limit: int | None = None,
) -> list[Story]:
    """The stories `feed` publishes from `candidates` (newest first), at most `limit`."""
    wanted = limit if limit is not None else feed.limit
    oldest = now - feed.max_age if feed.max_age else None
    chosen: list[Story] = []
    for story in candidates:
        if len(chosen) >= wanted:
            break
        if oldest is not None and story.sort_time < oldest:
            break  # candidates come newest first: nothing older can qualify
        if admits(feed, story, extra):
            chosen.append(story)
    return chosen
