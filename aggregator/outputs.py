"""Output feeds: which feeds exist, and which stories each one publishes.

Pure: takes the configuration and stories, returns definitions and selections.
The store supplies candidate stories newest first; `select` applies the feed's
filters, age and limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aggregator.filters import Query, matches, matches_any_copy, parse_query
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why `feed` publishes a story or not: what `aggregator preview --why` shows.

    `rule` is one of "source" (no copy from the feed's sources), "include" (an include
    query admitted it, or none did), "exclude" (an exclude query rejected it), "extra"
    (the request's `q` did not match) and "all" (no include queries: every story from
    the feed's sources). `query` is the query that decided, and `copy_source` the
    source of the copy it matched, when one did.
    """

    admitted: bool
    rule: str
    query: Query | None = None
    copy_source: str | None = None

    def __str__(self) -> str:
        where = f" (copy from {self.copy_source})" if self.copy_source else ""
        match self.rule, self.admitted:
            case "source", _:
                return "rejected: no copy from the feed's sources"
            case "include", True:
                return f"admitted by include {self.query}{where}"
            case "include", False:
                return "rejected: no include query matches any copy"
            case "exclude", _:
                return f"rejected by exclude {self.query}{where}"
            case "extra", _:
                return f"rejected: q={self.query} matches no copy"
            case _:
                return "admitted: the feed has no include queries"


def explain(feed: OutputFeed, story: Story, extra: Query | None = None) -> Verdict:
    """Whether `feed` publishes `story`, and which rule decided.

    A story belongs to the feed when a copy from one of its candidate sources carried
    it (any copy: the face may come from elsewhere); then an include query (if the
    feed has any) must match one of its copies, no exclude query may match any of its
    copies, and the request's `extra` query (ANDed) must match one of its copies.
    """
    if not any(copy.source in feed.sources for copy in story.copies):
        return Verdict(False, "source")
    admitted_by: Verdict = Verdict(True, "all")
    if feed.include:
        found = next(
            ((query, copy) for query in feed.include for copy in _matching_copies(query, story)),
            None,
        )
        if found is None:
            return Verdict(False, "include")
        admitted_by = Verdict(True, "include", found[0], found[1])
    for query in feed.exclude:
        for copy in _matching_copies(query, story):
            return Verdict(False, "exclude", query, copy)
    if extra is not None and not matches_any_copy(extra, story):
        return Verdict(False, "extra", extra)
    return admitted_by


def admits(feed: OutputFeed, story: Story, extra: Query | None = None) -> bool:
    """Whether `feed` publishes `story` (see `explain`, which also says why)."""
    return explain(feed, story, extra).admitted


def _matching_copies(query: Query, story: Story) -> Iterator[str]:
    """The sources of the copies that satisfy the whole query, in the story's order."""
    return (copy.source for copy in story.copies if matches(query, copy))


def review(
    feed: OutputFeed,
    candidates: Iterable[Story],
    *,
    now: datetime,
    extra: Query | None = None,
    limit: int | None = None,
) -> list[tuple[Story, Verdict]]:
    """Every candidate `select` looks at, with its verdict, until `limit` are admitted:
    what `select` would publish, and what it passed over on the way."""
    wanted = limit if limit is not None else feed.limit
    oldest = now - feed.max_age if feed.max_age else None
    reviewed: list[tuple[Story, Verdict]] = []
    admitted = 0
    for story in candidates:
        if admitted >= wanted:
            break
        if oldest is not None and story.sort_time < oldest:
            break  # candidates come newest first: nothing older can qualify
        verdict = explain(feed, story, extra)
        reviewed.append((story, verdict))
        admitted += verdict.admitted
    return reviewed


def select(
    feed: OutputFeed,
    candidates: Iterable[Story],
    *,
    now: datetime,
    extra: Query | None = None,
    limit: int | None = None,
) -> list[Story]:
    """The stories `feed` publishes from `candidates` (newest first), at most `limit`."""
    reviewed = review(feed, candidates, now=now, extra=extra, limit=limit)
    return [story for story, verdict in reviewed if verdict.admitted]
