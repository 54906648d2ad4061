"""What the status page and `aggregator status` show: plain rows from source states.

Pure: the web page (`pages`) and the terminal table (`cli status`) render these same
rows, so both always say the same thing. Times are shown relative to `now`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aggregator.model import DayActivity, PollLog, SourceState, StoredEntry, Story
from aggregator.outputs import OutputFeed, Verdict
from aggregator.schedule import due_at

HEALTHS = ("ok", "failing", "gone", "disabled", "new")


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    title: str
    location: str  # URL in use, or the file's path
    health: str  # one of HEALTHS
    detail: str  # one line saying why, for people
    last_polled_at: datetime | None
    last_status: str | None
    http_status: int | None
    next_poll_at: datetime | None  # when it will really be polled (host holds included)
    entries: int
    errors: int
    last_error: str | None
    moved_from: str | None
    polling_now: bool


@dataclass(frozen=True, slots=True)
class FeedRow:
    name: str
    title: str
    description: str
    sources: int
    links: Mapping[str, str]  # format → absolute URL: atom, rss, json


@dataclass(frozen=True, slots=True)
class Overview:
    sources: tuple[SourceRow, ...]
    feeds: tuple[FeedRow, ...]
    counts: Mapping[str, int]  # health → how many sources
    opml_url: str
    now: datetime


def health_of(state: SourceState) -> str:
    """One word for a source's health: ok, failing, gone, disabled, new (never polled)."""
    if not state.enabled:
        return "disabled"
    if state.gone:
        return "gone"
    if state.last_status is None:
        return "new"
    return "failing" if state.last_status == "error" else "ok"


def source_row(state: SourceState, title: str | None, now: datetime) -> SourceRow:
    health = health_of(state)
    return SourceRow(
        name=state.name,
        title=title or state.feed_title or state.name,
        location=state.url or state.path or "",
        health=health,
        detail=_detail(state, health, now),
        last_polled_at=state.last_polled_at,
        last_status=state.last_status,
        http_status=state.http_status,
        next_poll_at=None if health in ("gone", "disabled") else (due_at(state) or now),
        entries=state.entry_count,
        errors=state.error_count,
        last_error=state.last_error,
        moved_from=state.moved_from,
        polling_now=state.lease_until is not None and state.lease_until > now,
    )


def _detail(state: SourceState, health: str, now: datetime) -> str:
    if health == "disabled":
        return "disabled in the configuration"
    if health == "gone":
        return "answered 410 Gone: no longer polled; give it a new url to start again"
    if health == "new":
        return "not polled yet"
    parts = []
    if health == "failing":
        parts.append(f"{state.error_count} failed poll{'s' if state.error_count != 1 else ''}")
        if state.last_ok_at is not None:
            parts.append(f"last success {relative(state.last_ok_at, now)}")
    else:
        parts.append({"not_modified": "not modified", "unchanged": "unchanged"}.get(
            state.last_status or "", "ok"))  # fmt: skip
    if state.host_not_before is not None and state.host_not_before > now:
        parts.append(f"host {state.host} asked us to wait until {iso(state.host_not_before)}")
    if state.moved_from:
        moved = f" ({relative(state.moved_at, now)})" if state.moved_at else ""
        parts.append(f"moved from {state.moved_from}{moved}")
    return "; ".join(parts)


def overview(
    states: Iterable[SourceState],
    titles: Mapping[str, str | None],
    feeds: Mapping[str, OutputFeed],
    *,
    base_url: str,
    now: datetime,
) -> Overview:
    """Every configured source (by name) and every output feed, with health counts.

    `titles` maps each configured source to its configured title; states of
    sources not in it (removed from the configuration) are left out.
    """
    rows = tuple(
        source_row(state, titles[state.name], now)
        for state in sorted(states, key=lambda s: s.name)
        if state.name in titles
    )
    counts = dict.fromkeys(HEALTHS, 0)
    for row in rows:
        counts[row.health] += 1
    feed_rows = tuple(feed_row(feed, base_url) for feed in feeds.values())
    return Overview(rows, feed_rows, counts, f"{base_url}/feeds.opml", now)


def relative(when: datetime | None, now: datetime) -> str:
    """`3 min ago`, `in 2 h`, `now`; `—` for never."""
    if when is None:
        return "—"
    delta = when - now
    seconds = abs(delta.total_seconds())
    if seconds < 5:
        return "now"
    text = _span(timedelta(seconds=seconds))
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} ago"


def _span(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def iso(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when is not None else "—"


# ---------------------------------------------------------------------------
# Sorting the sources table, and the pages of one source and one output feed

# Worst first: what needs a look comes to the top.
HEALTH_ORDER: Final = {"failing": 0, "gone": 1, "new": 2, "disabled": 3, "ok": 4}
SORTS: Final = ("name", "health", "last_poll", "next_poll", "entries", "errors")
# A filter that rejects thousands of candidates need not list them all.
PASSED_OVER_SHOWN: Final = 100


def sort_rows(
    rows: Iterable[SourceRow], key: str, descending: bool = False
) -> tuple[SourceRow, ...]:
    """The rows ordered by `key` (one of SORTS; unknown keys sort by name), ties by name.

    By health, failing sources come first, the longest failing at the top; "never"
    (no poll yet) sorts after every time.
    """
    ordered = sorted(rows, key=lambda row: row.name)
    far = datetime.max.replace(tzinfo=UTC)
    keys: dict[str, Callable[[SourceRow], Any]] = {
        "health": lambda row: (HEALTH_ORDER.get(row.health, 9), -row.errors),
        "last_poll": lambda row: row.last_polled_at or far,
        "next_poll": lambda row: row.next_poll_at or far,
        "entries": lambda row: row.entries,
        "errors": lambda row: row.errors,
    }
    if key in keys:
        ordered.sort(key=keys[key], reverse=descending)
    elif descending:
        ordered.reverse()
    return tuple(ordered)


@dataclass(frozen=True, slots=True)
class SourcePage:
    row: SourceRow
    url: str | None
    path: str | None
    categories: tuple[str, ...]
    interval: str
    feeds: tuple[str, ...]  # output feeds that take this source
    polls: tuple[PollLog, ...]
    entries: tuple[StoredEntry, ...]
    days: tuple[DayActivity, ...]  # the chart's window, every day present


@dataclass(frozen=True, slots=True)
class StoryRow:
    published: datetime
    title: str
    link: str | None
    sources: tuple[str, ...]
    admitted: bool
    why: str


@dataclass(frozen=True, slots=True)
class FeedPage:
    row: FeedRow
    sources: tuple[str, ...]  # candidate sources, by name
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    limit: int
    max_age: str | None
    stories: tuple[StoryRow, ...]  # what it publishes now, newest first
    passed_over: tuple[StoryRow, ...]  # candidates rejected on the way (the newest ones)
    more_passed_over: int = 0  # rejected candidates beyond those


def feed_row(feed: OutputFeed, base_url: str) -> FeedRow:
    return FeedRow(
        name=feed.name,
        title=feed.title,
        description=feed.description,
        sources=len(feed.sources),
        links={fmt: f"{base_url}/feeds/{feed.name}.{fmt}" for fmt in ("atom", "rss", "json")},
    )


def story_rows(reviewed: Iterable[tuple[Story, Verdict]]) -> tuple[StoryRow, ...]:
    return tuple(
        StoryRow(
            published=story.sort_time,
            title=story.face.title,
            link=story.face.link,
            sources=story.sources,
            admitted=verdict.admitted,
            why=str(verdict),
        )
        for story, verdict in reviewed
    )


def duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def source_page_view(
    state: SourceState,
    title: str | None,
    *,
    url: str | None,
    path: str | None,
    categories: Sequence[str],
    interval: timedelta | None,
    default_interval: timedelta,
    feeds: Mapping[str, OutputFeed],
    polls: Sequence[PollLog],
    entries: Sequence[StoredEntry],
    days: Sequence[DayActivity],
    now: datetime,
) -> SourcePage:
    """What `/sources/NAME` shows, from the source's state, its configuration and history."""
    return SourcePage(
        row=source_row(state, title, now),
        url=url,
        path=path,
        categories=tuple(categories),
        interval=(
            duration_text(interval)
            if interval
            else f"{duration_text(default_interval)} (the default)"
        ),
        feeds=tuple(name for name, feed in feeds.items() if state.name in feed.sources),
        polls=tuple(polls),
        entries=tuple(entries),
        days=tuple(days),
    )


def feed_page_view(
    feed: OutputFeed, reviewed: Sequence[tuple[Story, Verdict]], *, base_url: str
) -> FeedPage:
    """What `/outputs/NAME` shows: the feed, its rules, and `review`'s verdicts."""
    rows = story_rows(reviewed)
    rejected = [row for row in rows if not row.admitted]
    return FeedPage(
        row=feed_row(feed, base_url),
        sources=tuple(sorted(feed.sources)),
        include=tuple(str(query) for query in feed.include),
        exclude=tuple(str(query) for query in feed.exclude),
        limit=feed.limit,
        max_age=duration_text(feed.max_age) if feed.max_age else None,
        stories=tuple(row for row in rows if row.admitted),
        passed_over=tuple(rejected[:PASSED_OVER_SHOWN]),
        more_passed_over=max(0, len(rejected) - PASSED_OVER_SHOWN),
    )
